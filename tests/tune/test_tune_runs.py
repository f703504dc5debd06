"""Real Ray Tune runs on one shared local session with tiny budgets: every algorithm x search algorithm,
ASHA stopping, PBT, retries, the validation-only objective and s3:// storage."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from ml.data.features import FeatureConfig
from ml.tune.runner import TuneOutcome, run_tune
from ml.tune.settings import TuneSettings
from ml.tune.trainable import train_fn

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def ray_session() -> Iterator[None]:
    import ray

    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def tiny(tmp_path: Path, **values: Any) -> TuneSettings:
    defaults: dict[str, Any] = {"samples": 2, "smoke": True, "iterations": 1, "storage": str(tmp_path), "name": "exp"}
    return TuneSettings(**{**defaults, **values})


def _quiet(_: str) -> None:
    """Progress lines are for people; tests read the outcome."""


def tune(settings: TuneSettings, trainable: Callable[..., None] = train_fn) -> TuneOutcome:
    return run_tune(settings, trainable, say=_quiet)


@pytest.mark.parametrize("search", ["grid", "random", "bayes", "bayesopt"])
@pytest.mark.parametrize("algo", ["ppo", "a3c"])
def test_smoke_run_of_each_algorithm_and_search(tmp_path: Path, algo: str, search: str) -> None:
    samples = 1 if search == "grid" else 2  # the default grid has two learning rates
    outcome = tune(tiny(tmp_path, algo=algo, search=search, samples=samples, cpus_per_trial=1))
    exp = tmp_path / "exp"
    board = outcome.leaderboard
    assert len(board) == 2
    assert set(board["status"]) == {"TERMINATED"}
    assert board["best_val_sharpe"].notna().all()
    saved = pd.read_csv(exp / "leaderboard.csv", dtype={"trial_id": str})  # ids like 66792e26 read as floats
    assert list(saved["trial_id"]) == list(board["trial_id"])
    assert len(pd.read_parquet(exp / "leaderboard.parquet")) == 2
    best = yaml.safe_load((exp / "best_config.yaml").read_text())
    assert best["algo"] == algo
    searched = [c.removeprefix("config/") for c in board.columns if c.startswith("config/")]
    assert searched
    top = board.iloc[0]
    for name in searched:
        assert best["config"][name] == pytest.approx(top[f"config/{name}"])
    assert (exp / "best" / "agent.pt").is_file()
    assert yaml.safe_load((exp / "tune_settings.yaml").read_text())["search"] == search
    for trial in board["path"]:
        files = {p.name for p in Path(trial).iterdir()}
        assert {"progress.csv", "result.json", "params.json"} <= files
        assert any(name.startswith("events.out.tfevents") for name in files)
    if algo == "ppo":
        from ml.backtest.engine import BacktestConfig, backtest

        # With one report per trial the best checkpoint is the one scored: its score is the backtester's number.
        result = backtest(str(exp / "best" / "agent.pt"), "sp500", BacktestConfig(period="validation"))
        assert top["best_val_sharpe"] == pytest.approx(result.metrics["sharpe"], rel=1e-9)
        # Each trial's validation returns are kept for PBO: the top trial's are the backtest's own, bar for bar.
        matrix = pd.read_parquet(exp / "trial_returns.parquet")
        assert list(matrix.columns) == list(board["trial_id"])
        assert matrix[top["trial_id"]].to_numpy() == pytest.approx(result.returns.to_numpy()[1:], abs=1e-15)
        assert top["val_sharpe"] == top["best_val_sharpe"]


def test_asha_stops_weak_trials_early(tmp_path: Path) -> None:
    outcome = tune(
        tiny(tmp_path, algo="ppo", search="random", samples=6, iterations=4, scheduler="asha", max_concurrent=2)
    )
    iterations = outcome.leaderboard["iterations"]
    assert set(outcome.leaderboard["status"]) == {"TERMINATED"}
    assert iterations.max() == 4
    assert iterations.min() < 4
    assert iterations.sum() < 6 * 4
    # Six trials, each taken at its best report, over the validation bars: enough configurations for a PBO.
    saved = json.loads((tmp_path / "exp" / "overfitting.json").read_text())
    assert saved == outcome.overfitting
    assert saved["n_configs"] == 6 and saved["combinations"] == 70 and 0.0 <= saved["pbo"] <= 1.0
    assert outcome.leaderboard["val_sharpe"].notna().all()


def test_pbt_runs_with_mutations(tmp_path: Path) -> None:
    outcome = tune(tiny(tmp_path, algo="ppo", search="random", samples=2, iterations=2, scheduler="pbt"))
    assert set(outcome.leaderboard["status"]) == {"TERMINATED"}
    assert (outcome.leaderboard["iterations"] == 2).all()


BAD_RATE = 5e-4


def flaky_trainable(log: Path) -> Callable[..., None]:
    """The real trainable, except that one learning rate always raises; every attempt is logged to a file.

    A closure, so that Ray ships it by value (workers cannot import this test module).
    """

    def flaky(config: dict[str, Any], **parameters: Any) -> None:
        with log.open("a") as file:
            file.write(f"{config['learning_rate']}\n")
        if config["learning_rate"] == BAD_RATE:
            raise RuntimeError("injected trial failure")
        train_fn(config, **parameters)

    return flaky


def test_a_failing_trial_is_retried_then_reported_without_stopping_the_others(tmp_path: Path) -> None:
    log = tmp_path / "attempts.txt"
    space = {"learning_rate": {"type": "loguniform", "low": 1e-5, "high": 1e-2, "grid": [1e-4, BAD_RATE, 1e-3]}}
    settings = tiny(tmp_path, algo="ppo", search="grid", samples=1, max_failures=2, space=space)
    outcome = tune(settings, flaky_trainable(log))
    board = outcome.leaderboard.set_index("config/learning_rate")
    assert board.loc[BAD_RATE, "status"] == "ERROR"
    assert "injected trial failure" in board.loc[BAD_RATE, "error"]
    assert list(board.drop(index=BAD_RATE)["status"]) == ["TERMINATED", "TERMINATED"]
    attempts = [float(line) for line in log.read_text().split()]
    assert attempts.count(BAD_RATE) == 3  # the first run and max_failures=2 retries
    assert attempts.count(1e-4) == 1
    assert attempts.count(1e-3) == 1
    assert outcome.best_config is not None
    assert outcome.best_config["config"]["learning_rate"] != BAD_RATE


def test_tuning_never_reads_the_test_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ml.data import splits
    from ml.envs import market as market_module

    parts: list[str] = []
    spans: list[splits.Span] = []
    original_part = splits.Split.part
    original_build = market_module.build_market

    def spy_part(self: splits.Split, name: str) -> splits.Span:
        parts.append(name)
        return original_part(self, name)

    def spy_build(data: Any, span: splits.Span, window: int) -> Any:
        spans.append(span)
        built = original_build(data, span, window)
        test_start = data.split.test.start
        # Absent, not just unindexed: no array of a market built while tuning reaches the first test bar.
        assert built.last_bar < test_start
        lengths = {len(built.timestamps), len(built.open), len(built.close), len(built.volume), len(built.features)}
        assert lengths == {span.stop} and span.stop <= test_start
        return built

    monkeypatch.setattr(splits.Split, "part", spy_part)
    monkeypatch.setattr(market_module, "build_market", spy_build)
    from ml.envs.factory import prepared

    prepared.cache_clear()  # a market cached by an earlier test would bypass the spies
    outcome = tune(tiny(tmp_path, algo="ppo", search="random", samples=1, folds=2))
    assert "test" not in parts
    assert {"train", "validation"} <= set(parts)
    assert len(spans) == 3  # train, and the two walk-forward windows of the validation split
    row = json.loads((Path(outcome.leaderboard.loc[0, "path"]) / "result.json").read_text().splitlines()[-1])
    windows = [row["val_sharpe_fold0"], row["val_sharpe_fold1"]]
    assert row["val_sharpe"] == pytest.approx(sum(windows) / 2)


def test_every_market_a_trial_receives_ends_before_the_test_split() -> None:
    """The payload Ray ships to every trial (training market and validation windows) holds no test bar."""
    from ml.envs.factory import prepared
    from ml.tune.objective import build_payload

    payload = build_payload("sp500", {}, 3, "sharpe", "max")
    data = prepared("sp500", FeatureConfig())
    test_start = data.split.test.start
    first_test_day = data.panel.timestamps[test_start]
    markets = [payload.source.market, *(window.market for window in payload.windows)]
    assert len(markets) == 4
    for market in markets:
        for array in (market.timestamps, market.open, market.close, market.volume, market.features):
            assert len(array) <= test_start
        assert market.timestamps[-1] < first_test_day
    assert len(payload.source.market.timestamps) == data.split.train.stop
    assert len(payload.windows[-1].market.timestamps) <= data.split.validation.stop


def test_s3_storage(tmp_path: Path, s3_bucket_factory: Callable[[str], str]) -> None:
    import boto3

    bucket = s3_bucket_factory("tune-results")
    outcome = tune(tiny(tmp_path, algo="ppo", search="random", samples=1, storage=f"{bucket}/experiments"))
    assert outcome.experiment == "s3://tune-results/experiments/exp"
    keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="tune-results")["Contents"]}
    prefix = "experiments/exp/"
    for name in ("tune_settings.yaml", "leaderboard.csv", "leaderboard.parquet", "best_config.yaml", "best/agent.pt"):
        assert prefix + name in keys
    assert any(k.endswith("result.json") for k in keys)
    assert not (tmp_path / "exp").exists()
