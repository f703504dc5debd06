"""Sharpe's bootstrap interval for many cells at once, bit for bit what `bootstrap_sharpe_ci` gives each alone.

A cell's resampled bar indices depend only on its series length, sample count, block length and seed, never on
its returns; so cells sharing those (a batch's cells on one period) draw them once, where drawing them was most
of a cell's bootstrap. A compiled kernel then takes every resample's Sharpe ratio straight from the indices,
without materialising the resampled series, doing `_k_sharpe`'s arithmetic in numpy's order (tested bit for
bit against the single-series function).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from ml.backtest.metrics import FloatArray, IntArray, risk_free_per_period
from ml.backtest.stats import _CHUNK, bootstrap_indices, bootstrap_sharpe_ci, default_block_length


@dataclass(frozen=True)
class IntervalRequest:
    """One cell's bootstrap: its returns and the settings `bootstrap_sharpe_ci` would be called with."""

    returns: FloatArray
    periods_per_year: float
    risk_free: float
    samples: int
    confidence: float
    seed: int


def sharpe_intervals(requests: Sequence[IntervalRequest]) -> list[tuple[float, float] | Exception]:
    """Each request's (lower, upper), or the error `bootstrap_sharpe_ci` raises for it, in order."""
    out: list[tuple[float, float] | Exception | None] = [None] * len(requests)
    groups: dict[tuple[int, float, float, int, float, int], list[int]] = {}
    for i, request in enumerate(requests):
        if _plain(request):
            key = (len(request.returns), float(request.periods_per_year), float(request.risk_free), request.samples,
                   float(request.confidence), request.seed)  # fmt: skip
            groups.setdefault(key, []).append(i)
        else:
            out[i] = _alone(request)  # bad input: the single-series function's own error
    for (_, ppy, risk_free, samples, confidence, seed), members in groups.items():
        try:
            excess = np.stack([requests[i].returns for i in members], axis=1) - risk_free_per_period(risk_free, ppy)
        except Exception:  # e.g. a risk-free rate it refuses: each says so in its own words
            for i in members:
                out[i] = _alone(requests[i])
            continue
        for i, pair in zip(members, _group_intervals(excess, ppy, samples, confidence, seed), strict=True):
            out[i] = pair
    return [pair if pair is not None else RuntimeError("no interval computed") for pair in out]


def _plain(request: IntervalRequest) -> bool:
    """Input `bootstrap_sharpe_ci` accepts as it is (anything else goes to it alone, for its own error)."""
    x, ppy = request.returns, request.periods_per_year
    shape_ok = x.ndim == 1 and len(x) >= 2 and x.dtype == np.float64
    return (
        shape_ok and request.samples >= 10 and 0.0 < request.confidence < 1.0 and ppy > 0 and bool(np.isfinite(x).all())
    )


def _alone(request: IntervalRequest) -> tuple[float, float] | Exception:
    try:
        low, high = bootstrap_sharpe_ci(
            request.returns, request.periods_per_year, request.risk_free,
            samples=request.samples, confidence=request.confidence, seed=request.seed,
        )  # fmt: skip
    except Exception as exc:  # the caller records it as the cell's failure
        return exc
    return low, high


def _group_intervals(
    excess: FloatArray, ppy: float, samples: int, confidence: float, seed: int
) -> list[tuple[float, float]]:
    """`bootstrap_sharpe_ci`'s interval of every column of `excess` (n, cells), drawing the indices once."""
    n, cells = excess.shape
    block = default_block_length(n)
    rng = np.random.default_rng(seed)
    sharpes = np.empty((samples, cells))
    columns = np.ascontiguousarray(excess.T)
    for first in range(0, samples, _CHUNK):
        count = min(_CHUNK, samples - first)
        idx = np.ascontiguousarray(bootstrap_indices(n, count, block, "stationary", rng).T)
        _resampled_sharpes(columns, idx, math.sqrt(ppy), sharpes[first : first + count])
    tail = (1.0 - confidence) / 2.0
    bounds = np.quantile(sharpes, [tail, 1.0 - tail], axis=0)
    return [(float(bounds[0, j]), float(bounds[1, j])) for j in range(cells)]


@numba.njit(cache=True, nogil=True)
def _resampled_sharpes(columns: FloatArray, idx: IntArray, root_ppy: float, out: FloatArray) -> None:
    """out[s, c] = `_k_sharpe` of column c resampled by idx[s], with numpy's arithmetic in numpy's order: the
    sums run down the bars one by one (numpy's reductions along axis 0), the mean and the sample variance
    divide by n and n - 1, the squares are of (value - mean), and a constant resample has Sharpe 0."""
    cells, n = columns.shape
    for c in range(cells):
        column = columns[c]
        for s in range(idx.shape[0]):
            rows = idx[s]
            total, low, high = 0.0, np.inf, -np.inf
            for i in range(n):
                value = column[rows[i]]
                total += value
                low = min(low, value)
                high = max(high, value)
            mean = total / n
            squares = 0.0
            for i in range(n):
                deviation = column[rows[i]] - mean
                squares += deviation * deviation
            std = 0.0 if high == low else np.sqrt(squares / (n - 1))
            out[s, c] = mean / std * root_ppy if std > 0 else 0.0
