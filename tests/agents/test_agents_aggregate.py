"""IQM and the stratified bootstrap interval against scipy and cases small enough to enumerate by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ml.agents.aggregate import iqm, stratified_bootstrap_ci
from rlops_core.errors import RlopsError


def test_iqm_hand_computed() -> None:
    # 8 runs: drop the 2 lowest and the 2 highest, average 3, 4, 5, 6.
    assert iqm([8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0]) == pytest.approx(4.5)
    # 5 runs: floor(5 / 4) = 1 dropped at each end, so a diverged run (-1000) does not move it.
    assert iqm([-1000.0, 10.0, 20.0, 30.0, 40.0]) == pytest.approx(20.0)
    # Fewer than 4 runs: nothing to drop, the plain mean.
    assert iqm([1.0, 2.0, 6.0]) == pytest.approx(3.0)


@pytest.mark.parametrize("runs", [2, 3, 4, 5, 7, 10, 13])
def test_iqm_equals_scipy_trim_mean(runs: int) -> None:
    scores = np.random.default_rng(runs).normal(size=(6, runs))
    np.testing.assert_allclose(iqm(scores), stats.trim_mean(scores, 0.25, axis=1), rtol=1e-12)


def test_bootstrap_of_two_runs_matches_enumeration() -> None:
    # Runs {0, 1}: the 4 equally likely resamples have means 0, 0.5, 0.5, 1, so the central 95% spans [0, 1]
    # and the replicate mean is 0.5.
    interval = stratified_bootstrap_ci([[0.0, 1.0]], statistic=lambda x: x.mean(axis=1), reps=20_000)
    assert interval == (pytest.approx(0.5), 0.0, 1.0)


def test_bootstrap_is_stratified() -> None:
    # Resampling within each task keeps one 0 task and one 1 task in every replicate: the mean never moves.
    # Pooling the six runs would give replicate means anywhere from 0 to 1.
    interval = stratified_bootstrap_ci([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], statistic=lambda x: x.mean(axis=1))
    assert interval == (0.5, 0.5, 0.5)


def test_one_stratum_matches_scipy_percentile_bootstrap() -> None:
    scores = np.random.default_rng(7).lognormal(size=9)
    ours = stratified_bootstrap_ci([scores], reps=50_000, seed=1)
    theirs = stats.bootstrap(
        (scores,),
        lambda x, axis: stats.trim_mean(x, 0.25, axis=axis),
        n_resamples=50_000,
        method="percentile",
        random_state=np.random.default_rng(2),
    ).confidence_interval
    assert ours.point == pytest.approx(stats.trim_mean(scores, 0.25))
    spread = float(scores.max() - scores.min())
    # Two independent Monte Carlo estimates of the same percentiles agree to a small share of the range.
    assert ours.low == pytest.approx(theirs.low, abs=0.02 * spread)
    assert ours.high == pytest.approx(theirs.high, abs=0.02 * spread)


def test_bad_input_is_named() -> None:
    with pytest.raises(RlopsError, match="stratum 1 has no runs"):
        stratified_bootstrap_ci([[1.0], []])
    with pytest.raises(RlopsError, match="NaN or infinite"):
        stratified_bootstrap_ci([[1.0, float("nan")]])
    with pytest.raises(RlopsError, match="confidence"):
        stratified_bootstrap_ci([[1.0]], confidence=1.5)
