"""Counting every configuration evaluated on the way to a winner: the deflated Sharpe ratio of the best backtest cell
with N = the tuning trials that came before plus the cells, and the variance of all their Sharpe ratios.

A pipeline's test-split leaderboard holds a handful of cells, but each agent in it is the winner of a tuning search:
judged against the cells alone, the best cell's Sharpe is compared with the luck of a few draws rather than of the
whole search, and a walk-forward that re-tunes per fold adds its trials to that search. Tuning trials are scored on
validation bars and cells on their backtest periods; the variance pools both sets of per-period Sharpe ratios
(docs/metrics.md, "Counting trials").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.backtest.stats import deflate_trials
from rlops_core.errors import RlopsError

METRIC_COLUMNS = ("sharpe", "n_periods", "skew", "kurtosis", "periods_per_year")


@dataclass(frozen=True)
class SearchTrials:
    """The tuning trials before the cells: each one's annualised Sharpe ratio, and where they came from."""

    sharpes: tuple[float, ...]
    source: str  # e.g. "tune stage: ppo 8 trials, a3c 8 trials (validation split)"

    def __post_init__(self) -> None:
        bad = [v for v in self.sharpes if not math.isfinite(v)]
        if bad:
            raise RlopsError(f"tuning trials: every Sharpe ratio must be finite, got {bad[0]!r} ({self.source})")


def count_trials(cells: pd.DataFrame, search: SearchTrials | None = None) -> dict[str, Any]:
    """The deflated Sharpe of the best of ``cells`` (successful leaderboard rows with the metrics columns), every
    tuning trial of ``search`` counted, as a JSON-ready record that says which N and variance it used.

    Tuning Sharpe ratios are de-annualised with the best cell's periods per year: they come from the same dataset,
    so the same bar frequency.
    """
    missing = [c for c in METRIC_COLUMNS if c not in cells]
    if missing:
        raise RlopsError(f"cells: missing the metrics column(s) {', '.join(missing)}")
    if cells.empty:
        raise RlopsError("cells: no successful cell to deflate")
    sr, obs, skew, kurt, ppy = (cells[c].to_numpy(dtype=np.float64) for c in METRIC_COLUMNS)
    tuned = np.asarray(search.sharpes if search else (), dtype=np.float64)
    best_ppy = float(ppy[int(np.argmax(sr / np.sqrt(ppy)))])
    per_period = np.concatenate([tuned / math.sqrt(best_ppy), sr / np.sqrt(ppy)])
    n = len(per_period)
    variance = float(np.var(per_period, ddof=1)) if n > 1 else 0.0
    result = deflate_trials(sr, obs, skew, kurt, ppy, n_trials=n, trial_sharpe_variance=variance)
    return {
        "deflated_sharpe": result.deflated_sharpe,
        "n_trials": n,
        "tuning_trials": len(tuned),
        "cells": len(sr),
        "trial_sharpe_variance": variance,
        "expected_max_sharpe": result.expected_max_sharpe,
        "best_sharpe": result.best_sharpe,
        "variance_from": (
            f"per-period Sharpe ratios of {len(tuned)} tuning trial(s) (validation split) and {len(sr)} cell(s) "
            "(their backtest periods), pooled, ddof=1"
            if len(tuned)
            else f"per-period Sharpe ratios of the {len(sr)} cell(s), ddof=1"
        ),
        "tuning_source": search.source if search else "none: the cells are every trial",
    }


def deflation_line(record: Mapping[str, Any] | None, deflated_sharpe: float | None = None) -> str:
    """'deflated Sharpe 0.412 (N = 7, Sharpe variance 0.00123: 4 tuning trials + 3 cells)', or what is missing."""
    if not record or "n_trials" not in record:
        if deflated_sharpe is not None and math.isfinite(deflated_sharpe):
            return f"deflated Sharpe {deflated_sharpe:.3f} (trial count not recorded)"
        return "no deflated Sharpe: no cell finished"
    return (
        f"deflated Sharpe {record['deflated_sharpe']:.3f} (N = {record['n_trials']}, Sharpe variance "
        f"{record['trial_sharpe_variance']:.3g}: {record['tuning_trials']} tuning trials + {record['cells']} cells)"
    )


def search_from_tune(results: Mapping[str, Mapping[str, Any]], source: str) -> SearchTrials:
    """The trials of every algorithm as a tune stage records them (``trial_sharpes`` per algorithm)."""
    sharpes: list[float] = []
    parts: list[str] = []
    for algo, item in results.items():
        values = _trial_sharpes(
            item, f"{source}: {algo}", " (tuned before trials were counted); rerun tune and train with --force"
        )
        sharpes.extend(float(v) for v in values)
        parts.append(f"{algo} {len(values)} trials")
    return SearchTrials(tuple(sharpes), f"{source}: {', '.join(parts)} (validation split)")


def with_retunes(search: SearchTrials, retunes: Sequence[Mapping[str, Any]]) -> SearchTrials:
    """``search`` plus every trial of a walk-forward's per-fold tuning (``retunes``: one record per fold and
    algorithm, with its ``trial_sharpes``), since a configuration tried on a fold was tried all the same."""
    if not retunes:
        return search
    sharpes = list(search.sharpes)
    per_algo: dict[str, list[int]] = {}
    for item in retunes:
        where = f"walk-forward re-tunes: {item.get('algo')} fold {item.get('fold')}"
        values = _trial_sharpes(item, where, "; rerun the backtest stage with --force")
        sharpes.extend(float(v) for v in values)
        per_algo.setdefault(str(item.get("algo")), []).append(len(values))
    parts = []
    for algo, counts in per_algo.items():
        folds = _plural(len(counts), "fold")
        if len(set(counts)) == 1:
            parts.append(f"{algo} {folds} x {_plural(counts[0], 'trial')}")
        else:
            parts.append(f"{algo} {folds}, {_plural(sum(counts), 'trial')} in all")
    return SearchTrials(
        tuple(sharpes), f"{search.source} + walk-forward re-tunes: {', '.join(parts)} (each fold's validation bars)"
    )


def _trial_sharpes(record: Mapping[str, Any], where: str, remedy: str) -> Sequence[float]:
    """A tuning record's ``trial_sharpes``; records written before trials were counted have none."""
    values = record.get("trial_sharpes")
    if not isinstance(values, Sequence):
        raise RlopsError(f"{where} has no trial_sharpes{remedy}")
    return values


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
