"""Statistical honesty for backtests: how sure is a Sharpe ratio, and is the best of many trials just luck?

- :func:`bootstrap_sharpe_ci`: a confidence interval for the annualised Sharpe ratio from a block bootstrap. Daily
  returns are autocorrelated (volatility clusters), so resampling single days would understate the uncertainty;
  blocks of consecutive bars keep that dependence.
- :func:`probabilistic_sharpe_ratio` (PSR, Bailey & López de Prado 2012): the probability that the true Sharpe
  ratio exceeds a benchmark, given the sample length and the skew and kurtosis of the returns.
- :func:`deflated_sharpe_ratio` (DSR, Bailey & López de Prado 2014) and :func:`deflate_batch`: the PSR against the
  Sharpe ratio the best of N unskilled trials would reach by chance, so a leaderboard's winner is judged against
  luck.

Units: PSR and DSR work with *per-period* (non-annualised) Sharpe ratios, as in the papers; divide an annualised
Sharpe by sqrt(periods_per_year). Kurtosis arguments are *excess* kurtosis (0 for a normal distribution), the
figure ``Metrics.kurtosis`` reports.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml.backtest.metrics import FloatArray, _finite, _k_sharpe, _k_skew_kurt, _periods, risk_free_per_period
from rlops_core.errors import RlopsError

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()
_CHUNK = 256  # bootstrap samples per batch: bounds memory at about 2 * n_periods * _CHUNK * 8 bytes


# --------------------------------------------------------------------------------------------------------------------
# bootstrap


@dataclass(frozen=True)
class SharpeInterval:
    """A bootstrap percentile interval for the annualised Sharpe ratio of one series."""

    sharpe: float  # the sample's own annualised Sharpe
    lower: float
    upper: float
    confidence: float
    samples: int
    block_length: int
    method: str
    seed: int

    def __iter__(self) -> Iterator[float]:
        """Unpacks as ``lower, upper``."""
        return iter((self.lower, self.upper))

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "sharpe": self.sharpe,
            "lower": self.lower,
            "upper": self.upper,
            "confidence": self.confidence,
            "samples": self.samples,
            "block_length": self.block_length,
            "method": self.method,
            "seed": self.seed,
        }


def default_block_length(n_periods: int) -> int:
    """round(n ** (1/3)), at least 1: the usual rate for block bootstraps of a mean-like statistic."""
    length: int = round(math.pow(n_periods, 1.0 / 3.0))
    return max(1, length)


def bootstrap_indices(
    n_periods: int,
    samples: int,
    block_length: int,
    method: Literal["stationary", "circular"],
    rng: np.random.Generator,
) -> npt.NDArray[np.int64]:
    """Resampled bar indices, shape (n_periods, samples), both schemes wrapping from the last bar to the first.

    ``stationary`` (Politis & Romano 1994): each bar starts a new block with probability 1 / block_length at a
    uniformly drawn bar, else continues the current block; block lengths are geometric with mean ``block_length``.
    ``circular`` (Politis & Romano 1992): fixed blocks of ``block_length`` bars from uniformly drawn starts.
    """
    t = np.arange(n_periods)[:, None]
    cols = np.arange(samples)[None, :]
    if method == "stationary":
        starts = rng.integers(0, n_periods, size=(n_periods, samples))
        new_block = rng.random((n_periods, samples)) < 1.0 / block_length
        new_block[0] = True
        block_start = np.maximum.accumulate(np.where(new_block, t, 0), axis=0)
        return (starts[block_start, cols] + t - block_start) % n_periods
    n_blocks = -(-n_periods // block_length)
    starts = rng.integers(0, n_periods, size=(n_blocks, samples))
    return (starts[t // block_length, cols] + t % block_length) % n_periods


def bootstrap_sharpe_ci(
    returns: npt.ArrayLike,
    periods_per_year: float,
    risk_free: float = 0.0,
    *,
    confidence: float = 0.95,
    samples: int = 2000,
    block_length: int | None = None,
    method: Literal["stationary", "circular"] = "stationary",
    seed: int = 0,
) -> SharpeInterval:
    """Percentile confidence interval of the annualised Sharpe ratio under a block bootstrap.

    Each of ``samples`` resamples rebuilds a series of the original length from blocks of consecutive bars
    (:func:`bootstrap_indices`) and takes its Sharpe ratio (the conventions of ``metrics.sharpe``: sample std,
    geometric per-period risk-free rate, 0 for a zero-variance resample). The interval is the
    ((1 - confidence) / 2, (1 + confidence) / 2) quantiles of those Sharpe ratios. ``block_length`` defaults to
    :func:`default_block_length`. The same ``seed`` gives the same interval.
    """
    x = _finite("returns", returns)
    if x.ndim != 1 or len(x) < 2:
        raise RlopsError(f"returns: expected a 1-D series of at least 2 periods, got shape {x.shape}")
    if not 0.0 < confidence < 1.0:
        raise RlopsError(f"confidence: must be strictly between 0 and 1, got {confidence!r}")
    if samples < 10:
        raise RlopsError(f"samples: need at least 10 bootstrap samples, got {samples!r}")
    if method not in ("stationary", "circular"):
        raise RlopsError(f"method: must be 'stationary' or 'circular', got {method!r}")
    n = len(x)
    block = default_block_length(n) if block_length is None else int(block_length)
    if not 1 <= block <= n:
        raise RlopsError(f"block_length: must be between 1 and the series length {n}, got {block_length!r}")
    ppy = _periods(periods_per_year)
    excess = x - risk_free_per_period(risk_free, ppy)

    rng = np.random.default_rng(seed)
    sharpes = np.empty(samples)
    for first in range(0, samples, _CHUNK):
        count = min(_CHUNK, samples - first)
        idx = bootstrap_indices(n, count, block, method, rng)
        sharpes[first : first + count] = _k_sharpe(excess[idx], ppy)
    tail = (1.0 - confidence) / 2.0
    lower, upper = np.quantile(sharpes, [tail, 1.0 - tail])
    return SharpeInterval(
        sharpe=float(_k_sharpe(excess[:, None], ppy)[0]),
        lower=float(lower),
        upper=float(upper),
        confidence=float(confidence),
        samples=int(samples),
        block_length=block,
        method=method,
        seed=int(seed),
    )


# --------------------------------------------------------------------------------------------------------------------
# probabilistic and deflated Sharpe ratio


def _check_obs(n_obs: int) -> int:
    if int(n_obs) != n_obs or n_obs < 2:
        raise RlopsError(f"n_obs: need a whole number of at least 2 observations, got {n_obs!r}")
    return int(n_obs)


def _psr(
    sharpe: FloatArray, n_obs: FloatArray | int, skew: FloatArray, excess_kurtosis: FloatArray, threshold: float
) -> FloatArray:
    # (gamma4 - 1) / 4 with gamma4 the raw kurtosis is (excess + 2) / 4. Population moments keep the variance
    # term positive; bias-adjusted sample moments can push it to or below zero for tiny, odd samples, where the
    # estimate carries no information and the z-score is taken as infinite rather than imaginary.
    var_term = 1.0 - skew * sharpe + (excess_kurtosis + 2.0) / 4.0 * sharpe**2
    var_term = np.maximum(var_term, np.finfo(np.float64).tiny)
    z = (sharpe - threshold) * np.sqrt(np.asarray(n_obs, dtype=np.float64) - 1.0) / np.sqrt(var_term)
    return np.array([_NORMAL.cdf(float(v)) for v in np.atleast_1d(z)], dtype=np.float64)


def probabilistic_sharpe_ratio(
    sharpe: float,
    n_obs: int,
    skew: float = 0.0,
    excess_kurtosis: float = 0.0,
    benchmark_sharpe: float = 0.0,
) -> float:
    """Probability that the true per-period Sharpe ratio exceeds ``benchmark_sharpe`` (PSR).

    PSR = Phi((SR - SR*) * sqrt(T - 1) / sqrt(1 - g3 * SR + (g4 - 1) / 4 * SR^2)), with SR the observed per-period
    Sharpe ratio, SR* the benchmark, T = ``n_obs`` returns, g3 their skewness and g4 their raw kurtosis
    (``excess_kurtosis`` + 3). Negative skew and fat tails widen the Sharpe ratio's standard error and lower PSR.
    """
    n = _check_obs(n_obs)
    values = [sharpe, skew, excess_kurtosis, benchmark_sharpe]
    if not all(math.isfinite(v) for v in values):
        raise RlopsError(f"sharpe, skew, excess_kurtosis, benchmark_sharpe: must be finite, got {values}")
    return float(_psr(np.array([sharpe]), n, np.array([skew]), np.array([excess_kurtosis]), benchmark_sharpe)[0])


def expected_max_sharpe(n_trials: int, trial_sharpe_variance: float, mean_sharpe: float = 0.0) -> float:
    """Expected largest of ``n_trials`` Sharpe ratios drawn from a normal with the given mean and variance.

    E[max] ~ mean + sqrt(V) * ((1 - gamma) * Phi^-1(1 - 1/N) + gamma * Phi^-1(1 - 1/(N e))), gamma the
    Euler-Mascheroni constant (Bailey, Borwein, López de Prado & Zhu 2014). One trial has nothing to be the best
    of: its expected maximum is the mean.
    """
    if int(n_trials) != n_trials or n_trials < 1:
        raise RlopsError(f"n_trials: need a whole number of at least 1 trial, got {n_trials!r}")
    if not math.isfinite(trial_sharpe_variance) or trial_sharpe_variance < 0:
        raise RlopsError(f"trial_sharpe_variance: must be a finite number >= 0, got {trial_sharpe_variance!r}")
    if n_trials == 1:
        return float(mean_sharpe)
    spread = (1.0 - EULER_GAMMA) * _NORMAL.inv_cdf(1.0 - 1.0 / n_trials) + EULER_GAMMA * _NORMAL.inv_cdf(
        1.0 - 1.0 / (n_trials * math.e)
    )
    return float(mean_sharpe + math.sqrt(trial_sharpe_variance) * spread)


def deflated_sharpe_ratio(
    sharpe: float,
    n_obs: int,
    n_trials: int,
    trial_sharpe_variance: float,
    skew: float = 0.0,
    excess_kurtosis: float = 0.0,
) -> float:
    """Deflated Sharpe ratio: PSR of the selected trial against the Sharpe ratio luck alone would reach.

    DSR = PSR(SR*) with SR* = :func:`expected_max_sharpe` (``n_trials``, ``trial_sharpe_variance``), the expected
    best per-period Sharpe ratio of ``n_trials`` trials whose true Sharpe is zero and whose estimates vary across
    trials with variance ``trial_sharpe_variance``. ``sharpe``, ``n_obs``, ``skew`` and ``excess_kurtosis`` describe
    the selected trial. More trials raise SR* and lower DSR; DSR near 1 says the result survives the search, near
    0.5 or below that it is what luck delivers.
    """
    threshold = expected_max_sharpe(n_trials, trial_sharpe_variance)
    return probabilistic_sharpe_ratio(sharpe, n_obs, skew, excess_kurtosis, benchmark_sharpe=threshold)


@dataclass(frozen=True)
class DeflatedSharpe:
    """A batch of trials judged against luck. Sharpe ratios here are annualised unless named per-period."""

    n_trials: int  # trials searched (at least the number of trials given)
    best: int  # index of the trial with the highest Sharpe
    best_sharpe: float
    best_n_obs: int
    expected_max_sharpe: float  # what the best of n_trials unskilled trials reaches on average
    trial_sharpe_variance: float  # of the per-period Sharpe ratios across trials (ddof=1; 0 for one trial)
    deflated_sharpe: float  # DSR of the best trial
    probabilistic_sharpe: float  # PSR of the best trial against 0, which ignores the search
    trial_dsr: tuple[float, ...]  # each trial's PSR against the expected maximum, in input order

    def as_dict(self) -> dict[str, float | int | list[float]]:
        return {
            "n_trials": self.n_trials,
            "best": self.best,
            "best_sharpe": self.best_sharpe,
            "best_n_obs": self.best_n_obs,
            "expected_max_sharpe": self.expected_max_sharpe,
            "trial_sharpe_variance": self.trial_sharpe_variance,
            "deflated_sharpe": self.deflated_sharpe,
            "probabilistic_sharpe": self.probabilistic_sharpe,
            "trial_dsr": list(self.trial_dsr),
        }


def deflate_trials(
    sharpe: npt.ArrayLike,
    n_obs: npt.ArrayLike,
    skew: npt.ArrayLike,
    excess_kurtosis: npt.ArrayLike,
    periods_per_year: npt.ArrayLike,
    *,
    n_trials: int | None = None,
    trial_sharpe_variance: float | None = None,
) -> DeflatedSharpe:
    """Deflated Sharpe ratio of a batch of trials given by their summary statistics, one array entry per trial.

    ``sharpe`` holds *annualised* Sharpe ratios (as ``Metrics.sharpe``), de-annualised by dividing by
    sqrt(``periods_per_year``) (one value, or one per trial); ``n_obs``, ``skew`` and ``excess_kurtosis`` are each
    trial's number of returns and moments. The variance of the per-period Sharpe ratios across trials sets the luck
    threshold SR* (:func:`expected_max_sharpe`), and every trial's PSR against SR* is reported, the best trial's
    being the DSR. ``n_trials`` counts trials searched but not given (a search that kept only some runs); it
    defaults to the number given. ``trial_sharpe_variance`` (per-period) replaces the variance of the given trials
    when the search's Sharpe ratios are known beyond them (``trial_count.count_trials``).
    """
    names = ("sharpe", "n_obs", "skew", "excess_kurtosis", "periods_per_year")
    arrays = [
        _finite(name, v).ravel()
        for name, v in zip(names, (sharpe, n_obs, skew, excess_kurtosis, periods_per_year), strict=True)
    ]
    m = len(arrays[0])
    for name, array in zip(names, arrays, strict=True):
        if len(array) not in (1, m) or (name != "periods_per_year" and len(array) != m):
            raise RlopsError(f"{name}: {len(array)} values for {m} trials")
    sr, obs, sk, ku, ppy = (np.broadcast_to(a, (m,)) for a in arrays)
    if (ppy <= 0).any():
        raise RlopsError("periods_per_year: must be positive")
    if (obs < 2).any() or (obs != np.round(obs)).any():
        raise RlopsError("n_obs: every trial needs a whole number of at least 2 observations")
    trials = m if n_trials is None else int(n_trials)
    if trials < m:
        raise RlopsError(f"n_trials: {n_trials!r} is fewer than the {m} trials given")
    per_period = sr / np.sqrt(ppy)
    if trial_sharpe_variance is not None and not (math.isfinite(trial_sharpe_variance) and trial_sharpe_variance >= 0):
        raise RlopsError(f"trial_sharpe_variance: must be a finite number >= 0, got {trial_sharpe_variance!r}")
    if trial_sharpe_variance is not None:
        variance = float(trial_sharpe_variance)
    else:
        variance = float(np.var(per_period, ddof=1)) if m > 1 else 0.0
    threshold = expected_max_sharpe(trials, variance)
    dsr = _psr(per_period, obs, sk, ku, threshold)
    best = int(np.argmax(per_period))
    pick = slice(best, best + 1)
    psr_best = _psr(per_period[pick], obs[pick], sk[pick], ku[pick], 0.0)
    return DeflatedSharpe(
        n_trials=trials,
        best=best,
        best_sharpe=float(sr[best]),
        best_n_obs=int(obs[best]),
        expected_max_sharpe=float(threshold * math.sqrt(ppy[best])),
        trial_sharpe_variance=variance,
        deflated_sharpe=float(dsr[best]),
        probabilistic_sharpe=float(psr_best[0]),
        trial_dsr=tuple(float(v) for v in dsr),
    )


def deflated_sharpe_for_trials(
    trials: pd.DataFrame | Mapping[str, npt.ArrayLike], n_trials: int | None = None
) -> float:
    """DSR of the best row of a table of ``Metrics.as_dict()`` rows (a leaderboard): :func:`deflate_trials` on its
    ``sharpe``, ``n_periods``, ``skew``, ``kurtosis`` and ``periods_per_year`` columns."""
    names = ("sharpe", "n_periods", "skew", "kurtosis", "periods_per_year")
    missing = [name for name in names if name not in trials]
    if missing:
        raise RlopsError(f"trials: missing the metrics column(s) {', '.join(missing)}")
    sr, obs, sk, ku, ppy = (np.asarray(trials[name], dtype=np.float64) for name in names)
    return deflate_trials(sr, obs, sk, ku, ppy, n_trials=n_trials).deflated_sharpe


def deflate_batch(
    returns: npt.ArrayLike,
    periods_per_year: float,
    risk_free: float = 0.0,
    *,
    n_trials: int | None = None,
    axis: int = 0,
) -> DeflatedSharpe:
    """:func:`deflate_trials` for a batch given as return series, 2-D with time along ``axis`` (0: one per column).

    Each trial's Sharpe ratio (``metrics.sharpe`` conventions), skew and excess kurtosis come from its returns.
    """
    raw = _finite("returns", returns)
    if raw.ndim != 2 or axis not in (0, 1):
        raise RlopsError(f"returns: expected a 2-D array with time along axis 0 or 1, got shape {raw.shape}")
    x = np.moveaxis(raw, axis, 0)
    n = _check_obs(x.shape[0])
    ppy = _periods(periods_per_year)
    sharpe = _k_sharpe(x - risk_free_per_period(risk_free, ppy), ppy)
    skew, kurt = _k_skew_kurt(x)
    return deflate_trials(sharpe, np.full(x.shape[1], n), skew, kurt, ppy, n_trials=n_trials)
