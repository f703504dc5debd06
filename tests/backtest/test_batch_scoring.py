"""Sharpe's bootstrap interval for many cells at once is, cell by cell, bit for bit `bootstrap_sharpe_ci`'s."""

from __future__ import annotations

import numpy as np

from ml.backtest.batch_scoring import IntervalRequest, sharpe_intervals
from ml.backtest.stats import bootstrap_sharpe_ci


def alone(request: IntervalRequest) -> tuple[float, float]:
    low, high = bootstrap_sharpe_ci(
        request.returns, request.periods_per_year, request.risk_free,
        samples=request.samples, confidence=request.confidence, seed=request.seed,
    )  # fmt: skip
    return low, high


def test_intervals_equal_each_series_bootstrapped_alone() -> None:
    rng = np.random.default_rng(3)
    requests = []
    # Lengths shared and not, a sample count that leaves a partial chunk, risk-free rates, seeds, a flat series
    # (zero variance: Sharpe 0 in every resample) and long ones.
    for i, n in enumerate([300, 300, 300, 57, 57, 2, 3, 4100, 4100, 300]):
        returns = rng.normal(2e-4, 0.01, n)
        if i == 2:
            returns[:] = 0.001
        requests.append(IntervalRequest(returns, 252.0, 0.03 if i % 3 == 0 else 0.0, 300 + 7 * (i % 2), 0.9, i % 2))
    got = sharpe_intervals(requests)
    want = [alone(r) for r in requests]
    assert [np.asarray(g).tobytes() for g in got] == [np.asarray(w).tobytes() for w in want]
    assert got[2] == (0.0, 0.0)


def test_bad_input_gets_the_single_series_error() -> None:
    good = IntervalRequest(np.full(50, 0.001), 252.0, 0.0, 100, 0.95, 0)
    nan = IntervalRequest(np.array([0.01, np.nan, 0.02]), 252.0, 0.0, 100, 0.95, 0)
    few = IntervalRequest(np.zeros(50), 252.0, 0.0, 5, 0.95, 0)
    got = sharpe_intervals([nan, good, few])
    assert got[1] == alone(good)
    assert isinstance(got[0], Exception) and str(got[0]) == "returns: 1 value(s) are NaN or infinite"
    assert isinstance(got[2], Exception) and str(got[2]).startswith("samples: need at least 10")
