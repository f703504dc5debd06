"""The whole pipeline on a user's own single-stock CSV, with split dates, an embargo and a walk-forward chosen on
the command line: the split each stage used, the embargo gaps, no fold trained on its own bars, and the stitched
out-of-sample equity made of the folds' own returns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ml.agents.checkpoint import load_checkpoint
from ml.agents.env_sources import source_from_description
from ml.backtest.engine import BacktestConfig, backtest
from ml.data.features import FeatureConfig
from ml.data.resolve import resolve_dataset
from ml.data.splits import SplitConfig

VALIDATION_START, TEST_START, EMBARGO = "2021-01-04", "2022-01-03", 20


def write_stock_csv(path: Path) -> Path:
    """Four years of one stock's daily bars as a broker export names them (Date, Open, ..., Volume)."""
    rng = np.random.default_rng(7)
    stamps = pd.bdate_range("2019-01-02", "2022-12-30")
    close = 50 * np.exp(np.cumsum(rng.normal(0.0003, 0.012, len(stamps))))
    open_ = close * np.exp(rng.normal(0, 0.003, len(stamps)))
    frame = pd.DataFrame(
        {
            "Date": stamps.strftime("%Y-%m-%d"),
            "Open": open_.round(4),
            "High": (np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.004, len(stamps))))).round(4),
            "Low": (np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.004, len(stamps))))).round(4),
            "Close": close.round(4),
            "Volume": rng.integers(800_000, 1_500_000, len(stamps)),
        }
    )
    frame.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_pipeline_on_a_users_csv_with_chosen_dates_and_a_walk_forward(tmp_path: Path) -> None:
    csv = write_stock_csv(tmp_path / "ACME.csv")
    config = tmp_path / "pipeline.yaml"
    # One agent and the smallest search keep the whole chain (tune, refit, 2 fold refits) within the smoke budget.
    config.write_text(
        yaml.safe_dump(
            {"algos": ["ppo"], "baselines": ["buy_and_hold", "flat"], "search": "random", "scheduler": "none",
             "samples": 1, "iterations": 1}
        )
    )  # fmt: skip
    out = tmp_path / "run"
    command = [
        *("pipeline", "run", "--config", str(config), "--dataset", str(csv), "--smoke", "--out", str(out)),
        *("--validation-start", VALIDATION_START, "--test-start", TEST_START, "--embargo", str(EMBARGO)),
        *("--walk-forward", "2"),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "rlops.cli", *command],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200", "RAY_AUTH_MODE": "disabled"},
    )
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    assert "walk-forward: 2 folds, stitched" in done.stdout

    stamps = resolve_dataset(str(csv)).panel().timestamps
    chosen = SplitConfig(validation_start=VALIDATION_START, test_start=TEST_START, embargo=EMBARGO)
    split = chosen.resolve(stamps, FeatureConfig().warmup)
    assert stamps[split.validation.start] == pd.Timestamp(VALIDATION_START, tz="UTC")
    assert stamps[split.test.start] == pd.Timestamp(TEST_START, tz="UTC")
    assert split.validation.start - split.train.stop == EMBARGO
    assert split.test.start - split.validation.stop == EMBARGO

    # Every stage saw the chosen split: tuning's saved settings, the final refit's checkpoint (train + validation).
    tuned = yaml.safe_load((out / "tune" / "ppo" / "tune_settings.yaml").read_text())
    assert SplitConfig.from_dict(tuned["split"]) == chosen
    train = json.loads((out / "train" / "stage.json").read_text())["result"]["ppo"]
    final = load_checkpoint(train["checkpoint"])
    assert SplitConfig.from_dict(final.env_source["split"]) == chosen
    market = source_from_description(final.env_source).market  # type: ignore[attr-defined]
    assert len(market.timestamps) == split.validation.stop  # the refit's arrays end an embargo before the test

    # The walk-forward folds tile the end of the test split; each trained only on bars an embargo before it.
    tested = json.loads((out / "backtest" / "stage.json").read_text())["result"]
    walked = tested["walk_forward"]
    # Without per-fold tuning only the tune stage's trials come before the cells.
    assert walked["retunes"] == [] and tested["deflation"]["tuning_source"].startswith("tune stage: ppo 1 trials")
    assert "walk-forward" not in tested["deflation"]["tuning_source"]
    folds = pd.read_csv(out / "backtest" / "walk_forward" / "folds.csv")
    assert walked["folds"] == 2 and walked["embargo"] == EMBARGO
    assert set(folds["policy"]) == {"ppo", "buy_and_hold", "flat"}
    spans = folds.drop_duplicates("fold").sort_values("fold")
    position = {stamp: i for i, stamp in enumerate(stamps)}
    test_starts = [position[pd.Timestamp(s)] for s in spans["test_start"]]
    test_ends = [position[pd.Timestamp(s)] for s in spans["test_end"]]
    assert test_ends[-1] == len(stamps) - 1 and test_starts[1] == test_ends[0] + 1
    assert test_starts[0] >= split.test.start
    for row, start in zip(spans.to_dict("records"), test_starts, strict=True):
        assert start - position[pd.Timestamp(row["train_end"])] - 1 == EMBARGO
        checkpoint = next((out / "backtest" / "walk_forward" / f"fold{row['fold']}" / "ppo").rglob("*.pt"))
        recorded = load_checkpoint(checkpoint).env_source
        fold_market = source_from_description(recorded).market  # type: ignore[attr-defined]
        assert fold_market.timestamps[-1] < pd.Timestamp(row["test_start"])  # training never reached the fold
        assert len(fold_market.timestamps) == start - EMBARGO
        # The checkpoint carries its fold's split: a plain backtest of it scores exactly its fold.
        again = backtest(str(checkpoint), str(csv), BacktestConfig(bootstrap_samples=10))
        assert (again.period_start, again.period_end) == (row["test_start"], row["test_end"])
        ppo = folds[(folds["fold"] == row["fold"]) & (folds["policy"] == "ppo")].iloc[0]
        assert again.metrics["total_return"] == pytest.approx(ppo["total_return"], abs=1e-12)

    # The stitched curve chains the folds' returns: at each fold's end it is the product of the folds so far.
    equity = pd.read_csv(out / "backtest" / "walk_forward" / "equity.csv", index_col="timestamp")
    for policy in ("ppo", "buy_and_hold", "flat"):
        own = folds[folds["policy"] == policy].sort_values("fold")
        growth = np.cumprod(1.0 + own["total_return"].to_numpy())
        ends = [equity[equity["fold"] == k][policy].iloc[-1] for k in own["fold"]]
        assert np.allclose(np.array(ends) / equity[policy].iloc[0], growth, rtol=1e-9)
        overall = next(r for r in walked["overall"] if r["policy"] == policy)
        assert overall["total_return"] == pytest.approx(growth[-1] - 1.0, rel=1e-9, abs=1e-12)
    assert len(equity) == sum(e - s for s, e in zip(test_starts, test_ends, strict=True)) + 1

    # The research report shows the walk-forward: each fold's and the stitched figures, and the stitched curve.
    html = (out / "report" / "report.html").read_text()
    part = html[html.index('id="walk-forward"') :]
    part = part[: part.index("</section>")]
    for row in folds.to_dict("records"):
        assert f"{row['total_return']:.2%}" in part
    for row in walked["overall"]:
        assert f"{row['total_return']:.2%}" in part
    assert (out / "report" / "charts" / "walk_forward_equity.png").stat().st_size > 0
    assert f"Tuning trials counted: {tested['deflation']['tuning_source']}" in html.replace("&#x27;", "'")


def test_the_report_section_shows_each_fold_the_stitched_rows_and_curve(tmp_path: Path) -> None:
    from ml.pipeline.walk_forward import EQUITY_FILE, FOLDER, stitch
    from ml.pipeline.walk_forward_report import CHART, walk_forward_section

    stamps = pd.bdate_range("2022-01-03", periods=40, tz="UTC")
    rng = np.random.default_rng(3)
    folds = [pd.Series(np.r_[0.0, rng.normal(0, 0.01, 19)], index=stamps[k * 20 : (k + 1) * 20]) for k in (0, 1)]
    curve = stitch(folds, 100_000.0)
    (tmp_path / FOLDER).mkdir()
    frame = pd.DataFrame({"fold": [0] * 20 + [1] * 19, "ppo": curve.to_numpy()}, index=curve.index)
    frame.index.name = "timestamp"
    frame.to_csv(tmp_path / FOLDER / EQUITY_FILE)
    per_fold = [
        {"fold": k, "policy": "ppo", "train_start": "2019-01-02T00:00:00+00:00",
         "train_end": "2021-12-03T00:00:00+00:00", "test_start": str(f.index[0]), "test_end": str(f.index[-1]),
         "sharpe": 0.5 + k,
         "total_return": float(np.prod(1 + f.to_numpy()) - 1), "max_drawdown": -0.05}
        for k, f in enumerate(folds)
    ]  # fmt: skip
    total = float(curve.iloc[-1] / curve.iloc[0] - 1)
    walked = {"folds": 2, "embargo": 20, "per_fold": per_fold,
              "overall": [{"policy": "ppo", "sharpe": 0.9, "total_return": total, "max_drawdown": -0.07}]}  # fmt: skip
    part, charts = walk_forward_section(str(tmp_path), walked)
    assert part.key == "walk-forward" and set(charts) == {CHART}
    assert charts[CHART].startswith(b"\x89PNG")
    assert part.html.count("<tr") == 1 + 2 + 1  # header, two folds, the stitched row
    for row in per_fold:
        assert f"{row['total_return']:.2%}" in part.html
    assert f"{total:.2%}" in part.html and "2022-01-03 .. 2022-01-28" in part.html
    assert "up to 20 bars (the embargo) before the fold" in part.html


def test_tuning_on_a_fold_trains_and_scores_only_before_it(tmp_path: Path) -> None:
    """`walk_forward.tune`: each fold's tuning trials get markets that end an embargo before the fold."""
    from ml.pipeline.walk_forward import plan_folds
    from ml.tune.objective import build_payload

    csv = str(write_stock_csv(tmp_path / "ACME.csv"))
    stamps = resolve_dataset(csv).panel().timestamps
    chosen = SplitConfig(validation_start=VALIDATION_START, test_start=TEST_START, embargo=EMBARGO)
    for plan in plan_folds(stamps, chosen, FeatureConfig().warmup, 2, None):
        payload = build_payload(csv, {}, 1, "sharpe", "max", plan.split.to_dict())
        train, (validation,) = payload.source.market, payload.windows
        assert validation.span.stop == plan.fold.test.start - EMBARGO == plan.fold.train.stop
        assert len(validation.market.timestamps) == validation.span.stop  # no array reaches the embargo or the fold
        assert train.timestamps[-1] < stamps[validation.span.start - EMBARGO]
        assert payload.source.description["split"] == plan.split.to_dict()  # what its checkpoints will record


def test_a_fold_tuning_records_each_trials_validation_sharpe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`walk_forward.tune`: a fold's tuning keeps its trials' Sharpe ratios (as the tune stage does) for the count."""
    import ml.tune.runner as runner
    from ml.data.splits import Fold, Span
    from ml.pipeline.config import PipelineConfig
    from ml.pipeline.stages import StageContext
    from ml.pipeline.walk_forward import FoldPlan, _tune_fold
    from ml.tune.runner import TuneOutcome
    from ml.tune.settings import TuneSettings
    from ml.tune.trials import SHARPE

    tuned: list[TuneSettings] = []

    def fake_tune(settings: TuneSettings, say: object = None) -> TuneOutcome:
        tuned.append(settings)
        board = pd.DataFrame({SHARPE: [0.8, float("nan"), -0.3]})  # the second trial was never scored
        return TuneOutcome("exp/ppo", board, {"config": {"learning_rate": 1e-3}}, None)

    monkeypatch.setattr(runner, "run_tune", fake_tune)
    split = SplitConfig(validation_start=VALIDATION_START, test_start=TEST_START, embargo=EMBARGO)
    ctx = StageContext(PipelineConfig(), {}, {"data": {"store": "ACME.csv"}}, str(tmp_path), lambda _: None)
    plan = FoldPlan(Fold(1, Span(0, 500), Span(520, 600)), split)
    best, record = _tune_fold(ctx, "ppo", plan, str(tmp_path / "fold1"))
    assert best == {"config": {"learning_rate": 1e-3}} and tuned[0].split == split.to_dict()
    assert record == {"fold": 1, "algo": "ppo", "experiment": "exp/ppo", "trials": 3, "trial_sharpes": [0.8, -0.3]}


def test_the_backtest_stage_counts_each_folds_tuning_trials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The walk-forward runs before the test batch, so the batch's deflated Sharpe (in stage.json, the report and
    the console line) counts the per-fold tuning trials with the tune stage's."""
    import ml.backtest.batch as batch_module
    import ml.pipeline.walk_forward as walk_module
    from ml.backtest.batch import BatchResult
    from ml.backtest.trial_count import SearchTrials, count_trials, deflation_line
    from ml.pipeline.config import PipelineConfig, WalkForwardConfig
    from ml.pipeline.stages import StageContext, run_backtest

    retunes = [{"fold": k, "algo": "ppo", "trial_sharpes": [0.2 * k, -0.1]} for k in (0, 1)]
    monkeypatch.setattr(walk_module, "run_walk_forward", lambda ctx, checkpoints: {"folds": 2, "retunes": retunes})
    searches: list[SearchTrials] = []

    def fake_batch(grid: object, out: str, search: SearchTrials) -> BatchResult:
        searches.append(search)
        cells = pd.DataFrame({"sharpe": [0.9, 0.1], "n_periods": [250] * 2, "skew": [0.0] * 2,
                              "kurtosis": [0.0] * 2, "periods_per_year": [252.0] * 2})  # fmt: skip
        board = pd.DataFrame({"rank": [1, 2], "policy": ["ppo.pt", "baseline:flat"], "status": ["ok", "ok"],
                              "sharpe": [0.9, 0.1], "total_return": [0.1, 0.0], "max_drawdown": [-0.1, 0.0],
                              "error": [None, None]})  # fmt: skip
        deflation = count_trials(cells, search)
        return BatchResult(board, "sharpe", deflation["deflated_sharpe"], deflation["n_trials"], deflation)

    monkeypatch.setattr(batch_module, "run_batch", fake_batch)
    config = PipelineConfig(algos=("ppo",), baselines=("flat",), walk_forward=WalkForwardConfig(folds=2, tune=True))
    train = {"ppo": {"checkpoint": "ppo.pt", "trial_sharpes": [0.5, 0.7, 0.3]}}
    ctx = StageContext(config, {}, {"data": {"store": "ACME.csv"}, "train": train}, str(tmp_path), lambda _: None)
    result = run_backtest(ctx)
    assert searches[0].sharpes == (0.5, 0.7, 0.3, 0.0, -0.1, 0.2, -0.1)
    deflation = result["deflation"]
    assert result["n_trials"] == 9 and deflation["tuning_trials"] == 7 and deflation["cells"] == 2
    assert deflation["tuning_source"] == (
        "tune stage: ppo 3 trials (validation split) + walk-forward re-tunes: ppo 2 folds x 2 trials "
        "(each fold's validation bars)"
    )
    assert deflation_line(deflation).endswith(": 7 tuning trials + 2 cells)")
    assert result["walk_forward"]["retunes"] == retunes
