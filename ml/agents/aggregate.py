"""Aggregate scores across seeds the way rliable does (Agarwal et al., 2021): IQM and stratified bootstrap CIs.

A single seed says little about an RL algorithm; a mean over a few seeds is dragged around by one diverged or one
lucky run, and a median over five throws most of them away. The interquartile mean (the mean of the middle half,
``scipy.stats.trim_mean(scores, 0.25)``) sits between the two, and a bootstrap that resamples runs *within each
task* (stratified) gives its uncertainty without pretending tasks are interchangeable.

``rliable`` itself is not a dependency: it pins ``arch==5.3.0`` while this project runs arch 8, so the two
functions it would provide are written here and tested against scipy and hand-computed cases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from rlops_core.errors import RlopsError

FloatArray = npt.NDArray[np.float64]
Statistic = Callable[[FloatArray], FloatArray]
"""Maps an array of shape (reps, runs) to one value per row (shape (reps,))."""

TRIM = 0.25


def iqm(scores: npt.ArrayLike, axis: int = -1) -> FloatArray:
    """Interquartile mean along ``axis``: drop ``floor(n / 4)`` runs at each end, average the rest.

    Equal to ``scipy.stats.trim_mean(scores, 0.25, axis)``, which rliable uses (5 runs: the middle 3).
    """
    array = np.sort(np.asarray(scores, dtype=np.float64), axis=axis)
    n = array.shape[axis]
    if n == 0:
        raise RlopsError("iqm: no scores")
    cut = int(TRIM * n)
    kept = np.take(array, np.arange(cut, n - cut), axis=axis)
    return np.asarray(kept.mean(axis=axis), dtype=np.float64)


class Interval(NamedTuple):
    point: float
    """The statistic on the observed runs."""
    low: float
    high: float


def stratified_bootstrap_ci(
    strata: Sequence[npt.ArrayLike],
    statistic: Statistic = iqm,
    reps: int = 50_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of ``statistic`` over the runs of all ``strata`` (one stratum per task).

    Each replicate draws, for every stratum separately, as many runs as it has, with replacement, and applies
    ``statistic`` to the concatenation; the interval is the central ``confidence`` share of the replicates. With
    one stratum this is the ordinary percentile bootstrap. Seeded, so a report prints the same interval twice.
    """
    if not strata:
        raise RlopsError("stratified_bootstrap_ci: no strata")
    if not 0.0 < confidence < 1.0:
        raise RlopsError(f"stratified_bootstrap_ci: confidence must be in (0, 1), got {confidence}")
    if reps < 1:
        raise RlopsError(f"stratified_bootstrap_ci: reps must be >= 1, got {reps}")
    arrays = [np.asarray(s, dtype=np.float64).ravel() for s in strata]
    for index, array in enumerate(arrays):
        if array.size == 0:
            raise RlopsError(f"stratified_bootstrap_ci: stratum {index} has no runs")
        if not np.isfinite(array).all():
            raise RlopsError(f"stratified_bootstrap_ci: stratum {index} has NaN or infinite scores")
    rng = np.random.default_rng(seed)
    resampled = np.concatenate([a[rng.integers(0, a.size, size=(reps, a.size))] for a in arrays], axis=1)
    replicates = statistic(resampled)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    point = float(statistic(np.concatenate(arrays)[None, :])[0])
    return Interval(point, float(low), float(high))
