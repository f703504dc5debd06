"""Statistical honesty: the block-bootstrap Sharpe interval covers the true Sharpe of a known autocorrelated process
and is reproducible; PSR and DSR follow the published formulas; more trials deflate the best result; the best of
many noise strategies is exposed as luck while a real edge survives."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from ml.backtest import stats as st
from ml.backtest.metrics import compute_metrics
from rlops_core.errors import RlopsError

PPY = 252


def ar1_returns(rng: np.random.Generator, n: int, mu: float, sigma: float, phi: float) -> np.ndarray:
    """r_t = mu + e_t, e_t = phi * e_{t-1} + sigma * u_t, started in its stationary distribution."""
    shocks = rng.normal(0.0, sigma, n)
    e = np.empty(n)
    e[0] = shocks[0] / math.sqrt(1 - phi**2)
    for t in range(1, n):
        e[t] = phi * e[t - 1] + shocks[t]
    return mu + e


def test_bootstrap_interval_covers_the_true_sharpe_of_an_ar1_process_in_most_trials() -> None:
    mu, sigma, phi, n = 0.0006, 0.01, 0.3, 750
    true_sharpe = mu / (sigma / math.sqrt(1 - phi**2)) * math.sqrt(PPY)
    for method in ("stationary", "circular"):
        covered = 0
        trials = 30
        for seed in range(trials):
            r = ar1_returns(np.random.default_rng(1000 + seed), n, mu, sigma, phi)
            ci = st.bootstrap_sharpe_ci(r, PPY, samples=400, method=method, seed=seed)
            assert ci.lower < ci.sharpe < ci.upper
            covered += ci.lower <= true_sharpe <= ci.upper
        # a 95% interval; the percentile bootstrap under-covers a little in samples this short
        assert covered / trials >= 0.8, (method, covered)


def test_bootstrap_is_reproducible_with_a_seed_and_changes_without_it() -> None:
    r = ar1_returns(np.random.default_rng(3), 500, 0.0004, 0.01, 0.2)
    first = st.bootstrap_sharpe_ci(r, PPY, samples=300, seed=7)
    again = st.bootstrap_sharpe_ci(r, PPY, samples=300, seed=7)
    other = st.bootstrap_sharpe_ci(r, PPY, samples=300, seed=8)
    assert first == again
    assert (first.lower, first.upper) != (other.lower, other.upper)
    low, high = first  # unpacks as (lower, upper)
    assert (low, high) == (first.lower, first.upper)
    assert first.sharpe == pytest.approx(compute_metrics(r, PPY).sharpe, rel=1e-12)
    assert first.block_length == st.default_block_length(500) == 8
    assert first.as_dict()["method"] == "stationary"


def test_wider_confidence_gives_a_wider_interval_and_risk_free_shifts_it() -> None:
    r = ar1_returns(np.random.default_rng(4), 600, 0.0005, 0.01, 0.1)
    narrow = st.bootstrap_sharpe_ci(r, PPY, confidence=0.8, samples=500, seed=1)
    wide = st.bootstrap_sharpe_ci(r, PPY, confidence=0.99, samples=500, seed=1)
    assert wide.lower < narrow.lower < narrow.upper < wide.upper
    with_rf = st.bootstrap_sharpe_ci(r, PPY, risk_free=0.05, confidence=0.8, samples=500, seed=1)
    assert with_rf.sharpe == pytest.approx(compute_metrics(r, PPY, risk_free=0.05).sharpe, rel=1e-12)
    assert with_rf.upper < narrow.upper


def test_bootstrap_indices_keep_blocks_of_consecutive_bars() -> None:
    rng = np.random.default_rng(0)
    circular = st.bootstrap_indices(100, 50, 10, "circular", rng)
    steps = (np.diff(circular, axis=0) % 100)[np.arange(1, 100) % 10 != 0]
    assert (steps == 1).all()  # inside a fixed block every bar follows its predecessor
    stationary = st.bootstrap_indices(1000, 200, 5, "stationary", rng)
    continues = np.mean(np.diff(stationary, axis=0) % 1000 == 1)
    assert continues == pytest.approx(1 - 1 / 5, abs=0.01)  # a new block starts with probability 1 / length
    assert stationary.min() >= 0
    assert stationary.max() < 1000


def test_psr_follows_the_published_formula() -> None:
    sr, n, skew, kurt, bench = 0.08, 500, -0.7, 4.0, 0.02
    raw_kurtosis = kurt + 3
    z = (sr - bench) * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (raw_kurtosis - 1) / 4 * sr**2)
    assert st.probabilistic_sharpe_ratio(sr, n, skew, kurt, bench) == pytest.approx(scipy.stats.norm.cdf(z), rel=1e-12)
    assert st.probabilistic_sharpe_ratio(0.05, 300, benchmark_sharpe=0.05) == pytest.approx(0.5)
    # more data and thinner tails make the same Sharpe more convincing
    assert st.probabilistic_sharpe_ratio(0.05, 1000) > st.probabilistic_sharpe_ratio(0.05, 200)
    assert st.probabilistic_sharpe_ratio(0.05, 500, -1.0, 6.0) < st.probabilistic_sharpe_ratio(0.05, 500)


def test_expected_max_sharpe_and_dsr_follow_the_published_formulas() -> None:
    n_trials, variance = 100, 0.002
    gamma = 0.5772156649015329
    expected = math.sqrt(variance) * (
        (1 - gamma) * scipy.stats.norm.ppf(1 - 1 / n_trials) + gamma * scipy.stats.norm.ppf(1 - 1 / (n_trials * math.e))
    )
    assert st.expected_max_sharpe(n_trials, variance) == pytest.approx(expected, rel=1e-12)
    assert st.expected_max_sharpe(1, variance) == 0.0
    dsr = st.deflated_sharpe_ratio(0.12, 750, n_trials, variance, skew=-0.3, excess_kurtosis=2.0)
    assert dsr == pytest.approx(st.probabilistic_sharpe_ratio(0.12, 750, -0.3, 2.0, expected), rel=1e-12)


def test_dsr_falls_as_the_number_of_trials_rises() -> None:
    values = [
        st.deflated_sharpe_ratio(0.1, 1000, n, 0.001, skew=-0.2, excess_kurtosis=1.0) for n in (1, 2, 10, 100, 1000)
    ]
    assert all(a > b for a, b in itertools.pairwise(values))
    assert values[0] > 0.99
    assert values[-1] < 0.6


def test_best_of_many_noise_strategies_is_exposed_as_luck() -> None:
    noise = np.random.default_rng(21).normal(0.0, 0.01, (1000, 200))
    result = st.deflate_batch(noise, PPY)
    assert result.n_trials == 200
    assert result.best_sharpe > 1.0  # looks good on its own ...
    assert result.probabilistic_sharpe > 0.95  # ... and passes a naive single-test PSR ...
    assert result.deflated_sharpe < 0.8  # ... but not against what 200 tries deliver by chance
    assert result.trial_dsr[result.best] == result.deflated_sharpe
    assert max(result.trial_dsr) == result.deflated_sharpe
    more_searched = st.deflate_batch(noise, PPY, n_trials=5000)
    assert more_searched.deflated_sharpe < result.deflated_sharpe


def test_a_real_edge_survives_deflation() -> None:
    rng = np.random.default_rng(22)
    trials = rng.normal(0.0, 0.01, (1500, 50))
    trials[:, 17] += 0.0025  # an annualised Sharpe near 4
    result = st.deflate_batch(trials.T, PPY, axis=1)
    assert result.best == 17
    assert result.deflated_sharpe > 0.99


def test_trials_from_a_leaderboard_table_equal_trials_from_returns() -> None:
    rng = np.random.default_rng(23)
    returns = rng.normal(0.0002, 0.01, (800, 12))
    board = pd.DataFrame([compute_metrics(returns[:, i], PPY, risk_free=0.02).as_dict() for i in range(12)])
    from_returns = st.deflate_batch(returns, PPY, risk_free=0.02)
    assert st.deflated_sharpe_for_trials(board) == pytest.approx(from_returns.deflated_sharpe, rel=1e-12)
    table = st.deflate_trials(board["sharpe"], board["n_periods"], board["skew"], board["kurtosis"], PPY)
    assert table.best == from_returns.best
    assert table.trial_dsr == pytest.approx(from_returns.trial_dsr, rel=1e-12)
    assert set(table.as_dict()) >= {"deflated_sharpe", "expected_max_sharpe", "trial_dsr"}
    single = st.deflated_sharpe_for_trials(board.iloc[:1])  # one trial: nothing to deflate, PSR against 0
    row = board.iloc[0]
    assert single == pytest.approx(
        st.probabilistic_sharpe_ratio(
            row["sharpe"] / math.sqrt(PPY), int(row["n_periods"]), row["skew"], row["kurtosis"]
        )
    )


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda: st.bootstrap_sharpe_ci([0.01, float("nan"), 0.0], PPY), "returns"),
        (lambda: st.bootstrap_sharpe_ci([0.01], PPY), "returns"),
        (lambda: st.bootstrap_sharpe_ci([0.01, 0.02, 0.0], PPY, confidence=1.5), "confidence"),
        (lambda: st.bootstrap_sharpe_ci([0.01, 0.02, 0.0], PPY, samples=1), "samples"),
        (lambda: st.bootstrap_sharpe_ci([0.01, 0.02, 0.0], PPY, block_length=0), "block_length"),
        (lambda: st.bootstrap_sharpe_ci([0.01, 0.02, 0.0], PPY, method="iid"), "method"),  # type: ignore[arg-type]
        (lambda: st.probabilistic_sharpe_ratio(0.1, 1), "n_obs"),
        (lambda: st.probabilistic_sharpe_ratio(float("nan"), 100), "sharpe"),
        (lambda: st.expected_max_sharpe(0, 0.1), "n_trials"),
        (lambda: st.expected_max_sharpe(10, -0.1), "trial_sharpe_variance"),
        (lambda: st.deflate_batch(np.zeros(10), PPY), "returns"),
        (lambda: st.deflate_batch(np.zeros((10, 3)), PPY, n_trials=2), "n_trials"),
        (lambda: st.deflate_trials([1.0, 2.0], [100], [0.0, 0.0], [0.0, 0.0], PPY), "n_obs"),
        (lambda: st.deflated_sharpe_for_trials(pd.DataFrame({"sharpe": [1.0]})), "n_periods"),
    ],
)
def test_bad_input_raises_an_error_naming_the_argument(call: Callable[[], object], named: str) -> None:
    with pytest.raises(RlopsError, match=named):
        call()
