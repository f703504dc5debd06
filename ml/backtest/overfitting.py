"""Probability of backtest overfitting (PBO) by combinatorially symmetric cross-validation (CSCV).

Bailey, Borwein, López de Prado and Zhu, "The probability of backtest overfitting", Journal of Computational
Finance 20(4), 2017. The T x N matrix holds the per-period returns of N configurations over the same T periods.
Its rows are cut into S blocks of consecutive periods; each of the C(S, S/2) ways of choosing half the blocks is
one in-sample set, the other half its out-of-sample set. In each split the configuration that is best in sample
is ranked out of sample: relative rank w = rank / (N + 1) (rank 1 the worst, ties sharing the average rank),
logit lambda = log(w / (1 - w)). PBO is the share of splits with lambda <= 0, where the in-sample winner does no
better than the out-of-sample median. Near 0: selecting in sample finds what works out of sample; near 0.5 or
above: the selection is luck or worse.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from rlops_core.errors import RlopsError

Statistic = Literal["sharpe", "mean"]
# Defaults of `assess`: fewer configurations make the rank too coarse to say anything, and blocks much
# shorter than this give Sharpe ratios that are mostly noise.
MIN_CONFIGS = 4
MAX_BLOCKS = 8
MIN_BLOCKS = 4
MIN_BLOCK_BARS = 10


@dataclass(frozen=True)
class Overfitting:
    pbo: float
    combinations: int
    blocks: int
    n_configs: int
    n_periods: int  # periods used: the earliest T mod S are left out so that every block has the same length
    statistic: str
    lambdas: tuple[float, ...]  # one per split, in itertools.combinations order of the in-sample blocks

    def as_dict(self) -> dict[str, Any]:
        return {
            "pbo": self.pbo,
            "combinations": self.combinations,
            "blocks": self.blocks,
            "n_configs": self.n_configs,
            "n_periods": self.n_periods,
            "statistic": self.statistic,
            "lambdas": list(self.lambdas),
        }


def cscv(performance: npt.ArrayLike, blocks: int = MAX_BLOCKS, statistic: Statistic = "sharpe") -> Overfitting:
    """PBO of a T x N matrix of per-period returns (rows periods, columns configurations), S = ``blocks``.

    ``statistic`` ranks configurations by their (per-period) Sharpe ratio or their mean return on each half;
    a configuration whose returns are all identical on a half has Sharpe 0 there, as in ``metrics.sharpe``.
    In-sample ties go to the first configuration.
    """
    x = np.asarray(performance, dtype=np.float64)
    if x.ndim != 2:
        raise RlopsError(f"performance: expected a periods x configurations matrix, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise RlopsError("performance: every return must be finite (a missing period has no rank)")
    t, n = x.shape
    if n < 2:
        raise RlopsError(f"performance: PBO ranks configurations against each other and needs at least 2, got {n}")
    if int(blocks) != blocks or blocks < 2 or blocks % 2:
        raise RlopsError(f"blocks: must be an even whole number >= 2, got {blocks!r}")
    if statistic not in ("sharpe", "mean"):
        raise RlopsError(f"statistic: must be 'sharpe' or 'mean', got {statistic!r}")
    size = t // blocks
    if size < 2:
        raise RlopsError(f"performance: {t} periods cannot make {blocks} blocks of at least 2 periods each")
    cut = x[t - size * blocks :].reshape(blocks, size, n)
    # Each half's statistic from per-block moments: C(S, S/2) splits never touch the raw rows again.
    means = cut.mean(axis=1)
    m2 = ((cut - means[:, None, :]) ** 2).sum(axis=1)
    lows, highs = cut.min(axis=1), cut.max(axis=1)
    splits = list(itertools.combinations(range(blocks), blocks // 2))
    lambdas = []
    for chosen in splits:
        inside = np.asarray(chosen)
        outside = np.setdiff1d(np.arange(blocks), inside)
        score_in = _half(means[inside], m2[inside], lows[inside], highs[inside], size, statistic)
        score_out = _half(means[outside], m2[outside], lows[outside], highs[outside], size, statistic)
        best = int(np.argmax(score_in))
        below = int((score_out < score_out[best]).sum())
        tied = int((score_out == score_out[best]).sum()) - 1
        w = (below + 1 + tied / 2) / (n + 1)
        lambdas.append(math.log(w / (1 - w)))
    share = sum(1 for v in lambdas if v <= 0) / len(lambdas)
    return Overfitting(share, len(splits), int(blocks), n, size * blocks, statistic, tuple(lambdas))


def _half(
    means: npt.NDArray[np.float64],
    m2: npt.NDArray[np.float64],
    lows: npt.NDArray[np.float64],
    highs: npt.NDArray[np.float64],
    size: int,
    statistic: Statistic,
) -> npt.NDArray[np.float64]:
    """The statistic of each configuration over the union of the given blocks (rows: blocks, columns: configs)."""
    mean: npt.NDArray[np.float64] = means.mean(axis=0)
    if statistic == "mean":
        return mean
    count = size * len(means)
    pooled = (m2 + size * (means - mean) ** 2).sum(axis=0)
    std = np.sqrt(pooled / (count - 1))
    # Identical values leave a float residue around their mean; they have no spread, so Sharpe 0.
    flat = lows.min(axis=0) == highs.max(axis=0)
    result: npt.NDArray[np.float64] = np.where(flat | (std == 0), 0.0, mean / np.where(std > 0, std, 1.0))
    return result


def choose_blocks(n_periods: int, max_blocks: int = MAX_BLOCKS, min_block_bars: int = MIN_BLOCK_BARS) -> int | None:
    """The largest even S <= ``max_blocks`` (and >= 4) whose blocks hold ``min_block_bars`` periods, or None."""
    for blocks in range(max_blocks - max_blocks % 2, MIN_BLOCKS - 1, -2):
        if n_periods // blocks >= min_block_bars:
            return blocks
    return None


def assess(
    performance: npt.ArrayLike,
    *,
    min_configs: int = MIN_CONFIGS,
    max_blocks: int = MAX_BLOCKS,
    min_block_bars: int = MIN_BLOCK_BARS,
    statistic: Statistic = "sharpe",
) -> dict[str, Any]:
    """PBO as a JSON-ready record when the matrix is big enough, else ``{"pbo": None, "reason": ...}``.

    What batches and tuning leaderboards record: the reason says, in words a report can print, why there is no
    PBO, so a missing figure is never shown as NaN.
    """
    x = np.asarray(performance, dtype=np.float64)
    if x.ndim != 2:
        raise RlopsError(f"performance: expected a periods x configurations matrix, got shape {x.shape}")
    t, n = x.shape
    if n < min_configs:
        return {"pbo": None, "reason": f"only {n} configuration(s); PBO needs at least {min_configs}"}
    blocks = choose_blocks(t, max_blocks, min_block_bars)
    if blocks is None:
        need = MIN_BLOCKS * min_block_bars
        return {
            "pbo": None,
            "reason": f"only {t} period(s); PBO needs at least {need} ({MIN_BLOCKS} blocks of {min_block_bars})",
        }
    return cscv(x, blocks, statistic).as_dict()


def describe(record: dict[str, Any] | None) -> str:
    """One line for reports and progress entries: the PBO and what it rests on, or why there is none."""
    if not record:
        return "no PBO recorded"
    if record.get("pbo") is None:
        return f"no PBO: {record.get('reason', 'not computed')}"
    return (
        f"PBO {record['pbo']:.0%} ({record['combinations']} splits of {record['blocks']} blocks, "
        f"{record['n_configs']} configurations, {record['n_periods']} periods)"
    )
