"""Every trial counted: a batch's deflated Sharpe with the tuning trials before it, and the cells' PBO."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.backtest.batch import Grid, run_batch
from ml.backtest.overfitting import cscv
from ml.backtest.report.batch import render_batch
from ml.backtest.report.load import load_batch
from ml.backtest.stats import deflate_trials, expected_max_sharpe
from ml.backtest.trial_count import SearchTrials, count_trials, deflation_line, search_from_tune, with_retunes
from rlops_core.errors import RlopsError


def leaderboard_rows(sharpes: list[float], ppy: float = 252.0) -> pd.DataFrame:
    n = len(sharpes)
    return pd.DataFrame(
        {"sharpe": sharpes, "n_periods": [500] * n, "skew": [0.0] * n, "kurtosis": [0.0] * n,
         "periods_per_year": [ppy] * n}
    )  # fmt: skip


def test_tuning_trials_join_the_count_and_the_variance() -> None:
    cells = leaderboard_rows([1.2, 0.4, 0.0])
    tuned = SearchTrials((0.9, 1.5, -0.3, 0.2), "tune stage: ppo 4 trials (validation split)")
    record = count_trials(cells, tuned)
    per_period = np.array([0.9, 1.5, -0.3, 0.2, 1.2, 0.4, 0.0]) / math.sqrt(252.0)
    assert record["n_trials"] == 7 and record["tuning_trials"] == 4 and record["cells"] == 3
    assert record["trial_sharpe_variance"] == pytest.approx(np.var(per_period, ddof=1), rel=1e-12)
    threshold = expected_max_sharpe(7, float(np.var(per_period, ddof=1)))
    assert record["expected_max_sharpe"] == pytest.approx(threshold * math.sqrt(252.0), rel=1e-12)
    alone = deflate_trials(cells["sharpe"], [500] * 3, [0.0] * 3, [0.0] * 3, 252.0).deflated_sharpe
    assert record["deflated_sharpe"] < alone  # the search the cells came from raises the bar
    assert count_trials(cells)["deflated_sharpe"] == pytest.approx(alone, rel=1e-12)  # no tuning: the old DSR
    line = deflation_line(record)
    assert line.startswith(f"deflated Sharpe {record['deflated_sharpe']:.3f} (N = 7, Sharpe variance ")
    assert line.endswith(": 4 tuning trials + 3 cells)")
    assert "tune stage: ppo 4 trials" in record["tuning_source"]
    assert "validation split" in record["variance_from"] and "pooled" in record["variance_from"]


def test_tune_results_without_trial_sharpes_are_refused_in_one_line() -> None:
    search = search_from_tune({"ppo": {"trial_sharpes": [0.1, 0.2]}, "a3c": {"trial_sharpes": [0.3]}}, "tune stage")
    assert (
        search.sharpes == (0.1, 0.2, 0.3)
        and search.source == "tune stage: ppo 2 trials, a3c 1 trials (validation split)"
    )
    with pytest.raises(RlopsError, match=r"a3c has no trial_sharpes .* rerun tune and train with --force"):
        search_from_tune({"a3c": {"trials": 2}}, "tune stage")
    with pytest.raises(RlopsError, match="must be finite"):
        SearchTrials((float("nan"),), "x")
    assert deflation_line(None) == "no deflated Sharpe: no cell finished"


def test_a_walk_forwards_per_fold_tuning_trials_join_the_count_and_the_variance() -> None:
    tuned = search_from_tune({"ppo": {"trial_sharpes": [0.9, 1.5]}, "a3c": {"trial_sharpes": [0.1]}}, "tune stage")
    retunes = [
        {"fold": 0, "algo": "ppo", "trial_sharpes": [0.3, -0.4]},
        {"fold": 0, "algo": "a3c", "trial_sharpes": [0.2]},
        {"fold": 1, "algo": "ppo", "trial_sharpes": [1.1, 0.6]},
        {"fold": 1, "algo": "a3c", "trial_sharpes": [0.0, 0.7]},  # a trial without a score is not listed
    ]
    search = with_retunes(tuned, retunes)
    assert search.sharpes == (0.9, 1.5, 0.1, 0.3, -0.4, 0.2, 1.1, 0.6, 0.0, 0.7)
    assert search.source == (
        "tune stage: ppo 2 trials, a3c 1 trials (validation split) + walk-forward re-tunes: "
        "ppo 2 folds x 2 trials, a3c 2 folds, 3 trials in all (each fold's validation bars)"
    )
    cells = leaderboard_rows([1.2, 0.4, 0.0])
    record = count_trials(cells, search)
    assert record["n_trials"] == 13 and record["tuning_trials"] == 10 and record["cells"] == 3
    per_period = np.array([*search.sharpes, 1.2, 0.4, 0.0]) / math.sqrt(252.0)
    assert record["trial_sharpe_variance"] == pytest.approx(np.var(per_period, ddof=1), rel=1e-12)
    assert "walk-forward re-tunes: ppo 2 folds x 2 trials" in record["tuning_source"]
    assert deflation_line(record).endswith(": 10 tuning trials + 3 cells)")
    assert with_retunes(tuned, []) is tuned  # no per-fold tuning: the tune stage's trials alone
    with pytest.raises(RlopsError, match=r"^walk-forward re-tunes: ppo fold 1 has no trial_sharpes; rerun"):
        with_retunes(tuned, [{"fold": 1, "algo": "ppo", "trials": 2}])


def test_a_batch_counts_its_search_and_judges_its_cells_by_pbo(tmp_path: Path) -> None:
    grid = Grid(
        policies=["baseline:buy_and_hold", "baseline:flat", "baseline:ma_crossover"],
        periods=["validation"],
        params=[{"fast": 5, "slow": 20}, {"fast": 10, "slow": 50}, {"fast": 20, "slow": 100}],
        workers=1,
        bootstrap_samples=20,
    )
    search = SearchTrials((0.8, -0.2, 0.5, 1.1, 0.3), "tune stage: ppo 5 trials (validation split)")
    result = run_batch(grid, str(tmp_path / "out"), search=search)
    assert (result.leaderboard["status"] == "ok").all() and len(result.leaderboard) == 5
    assert result.trials == 10 and result.deflation["tuning_trials"] == 5 and result.deflation["cells"] == 5
    saved = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert saved["deflation"] == result.deflation and saved["trials"] == 10
    # The cells' PBO is CSCV on their saved per-bar returns, 5 configurations in 8 blocks.
    cells = sorted(result.leaderboard["cell"])
    matrix = np.column_stack(
        [pd.read_parquet(tmp_path / "out" / "cells" / f"{c:04d}" / "timeseries.parquet")["returns"].to_numpy()[1:]
         for c in cells]
    )  # fmt: skip
    expected = cscv(matrix, blocks=8)
    assert saved["overfitting"]["n_configs"] == 5 and saved["overfitting"]["blocks"] == 8
    assert saved["overfitting"]["pbo"] == expected.pbo
    assert saved["overfitting"]["lambdas"] == pytest.approx(list(expected.lambdas))
    # The batch report says which N and variance the deflated Sharpe used, and the cells' PBO.
    html, _ = render_batch(load_batch(str(tmp_path / "out")))
    section = html[html.index('id="deflated-sharpe"') : html.index('id="leaderboard"')]
    assert "<span data-n-trials>10</span> trials (5 tuning trials + 5 cells)" in section
    assert f"per-bar Sharpe variance {result.deflation['trial_sharpe_variance']:.3g}" in section
    assert f"PBO {expected.pbo:.0%} (70 splits of 8 blocks, 5 configurations" in section
    assert "nan" not in section.lower()
