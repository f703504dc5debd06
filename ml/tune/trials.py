"""What each tuning trial showed at its best report: its validation Sharpe and its per-bar validation returns.

The pipeline counts every trial in the deflated Sharpe of its winner (with the variance of the trials' Sharpe
ratios) and judges the tuning leaderboard by the probability of backtest overfitting, whose matrix is the trials'
validation returns on common bars. A trial is taken at its best report, the one the search selected it by.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ml.backtest.overfitting import assess

SHARPE = "val_sharpe"  # the mean validation Sharpe of a report (the objective itself when the metric is Sharpe)
RETURNS = "val_returns"  # a report's validation returns, a JSON list (see `objective.score`)
RETURNS_FILE = "trial_returns.parquet"
OVERFITTING_FILE = "overfitting.json"


def best_report(history: pd.DataFrame | None, key: str, mode: str) -> pd.Series | None:
    """The row of a trial's report history with its best ``key`` (the first of equals), or None without scores."""
    if history is None or key not in history or not history[key].notna().any():
        return None
    scores = pd.to_numeric(history[key], errors="coerce").to_numpy(dtype=np.float64)
    position = int(np.nanargmax(scores) if mode == "max" else np.nanargmin(scores))
    row: pd.Series = history.iloc[position]
    return row


def report_sharpe(row: pd.Series | None) -> float:
    value = row.get(SHARPE) if row is not None else None
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else float("nan")


def scored_sharpes(leaderboard: pd.DataFrame) -> list[float]:
    """The validation Sharpe of every trial on a tuning leaderboard that was scored (others hold NaN): what the
    deflated Sharpe counts (`ml.backtest.trial_count`)."""
    return [float(v) for v in leaderboard[SHARPE] if math.isfinite(v)]


def report_returns(row: pd.Series | None) -> list[float] | None:
    text = row.get(RETURNS) if row is not None else None
    if not isinstance(text, str):
        return None  # an experiment from before returns were reported, or a trial that never scored
    values: list[float] = json.loads(text)
    return values


def returns_matrix(histories: Sequence[tuple[str, pd.Series | None]]) -> pd.DataFrame:
    """Trials' best-report validation returns as columns (in the order given); trials without them are left out."""
    columns = {trial: values for trial, row in histories if (values := report_returns(row)) is not None}
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:  # every trial scores the same validation windows, so this is a damaged experiment
        return pd.DataFrame()
    return pd.DataFrame(columns)


def tuning_overfitting(matrix: pd.DataFrame) -> dict[str, Any]:
    """PBO of the trials (``overfitting.assess``), or the reason there is none, as JSON-ready data."""
    if matrix.empty:
        return {"pbo": None, "reason": "no trial reported its validation returns"}
    values = matrix.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        return {"pbo": None, "reason": "a trial's validation returns are not all finite"}
    return assess(values)
