"""Reading what `BacktestResult.save` and `BatchResult.save` wrote, with one clear line for what is wrong."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ml.backtest.result import SUMMARY, BacktestResult
from ml.data import storage
from rlops_core.errors import RlopsError

REPORT = "report.html"
CHARTS = "charts"
BATCH_SUMMARY = "batch.json"
LEADERBOARD = "leaderboard.parquet"


def load_result(location: str) -> BacktestResult:
    try:
        result = BacktestResult.load(location)
    except RlopsError:
        raise
    except Exception as exc:  # a truncated Parquet file or a result.json missing keys: name the folder and why
        raise RlopsError(f"{location}: cannot read the backtest result ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in ("equity", "returns") if c not in result.timeseries.columns]
    if missing:
        raise RlopsError(f"{location}: timeseries.parquet lacks column(s) {', '.join(missing)}")
    if len(result.timeseries) < 3:
        raise RlopsError(f"{location}: {len(result.timeseries)} bar(s) is too short a backtest to report on")
    if not isinstance(result.timeseries.index, pd.DatetimeIndex):
        raise RlopsError(f"{location}: timeseries.parquet is not indexed by timestamp")
    return result


@dataclass(frozen=True)
class Batch:
    location: str
    leaderboard: pd.DataFrame
    metric: str
    deflated_sharpe: float
    trials: int
    grid: dict[str, Any] | None
    cell_dirs: tuple[int, ...]  # cells whose BacktestResult folder exists
    deflation: dict[str, Any] = field(default_factory=dict)  # N and Sharpe variance of the DSR (older: none)
    overfitting: dict[str, Any] = field(default_factory=dict)  # the cells' PBO, or why there is none


def load_batch(location: str) -> Batch:
    where = storage.join(location, BATCH_SUMMARY)
    try:
        summary = json.loads(storage.read_bytes(where))
        metric, deflated, trials = str(summary["metric"]), float(summary["deflated_sharpe"]), int(summary["trials"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise RlopsError(f"{where}: not a batch summary ({type(exc).__name__}: {exc})") from exc
    board_at = storage.join(location, LEADERBOARD)
    if not storage.exists(board_at):
        raise RlopsError(f"{location}: {LEADERBOARD} is missing")
    try:
        board = pd.read_parquet(io.BytesIO(storage.read_bytes(board_at)))
    except Exception as exc:  # pyarrow's errors are many types; the message is what the user needs
        raise RlopsError(f"{board_at}: cannot read ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in ("rank", "cell", "policy", "status", "error") if c not in board.columns]
    if missing:
        raise RlopsError(f"{board_at}: lacks column(s) {', '.join(missing)}")
    grid_at = storage.join(location, "grid.json")
    try:
        grid = json.loads(storage.read_bytes(grid_at)) if storage.exists(grid_at) else None
    except json.JSONDecodeError as exc:
        raise RlopsError(f"{grid_at}: not valid JSON ({exc})") from exc
    cell_dirs = tuple(
        int(i) for i in board["cell"] if storage.exists(storage.join(location, "cells", f"{int(i):04d}", SUMMARY))
    )
    extras = [summary.get(name) for name in ("deflation", "overfitting")]
    deflation, overfitting = (value if isinstance(value, dict) else {} for value in extras)
    return Batch(location, board, metric, deflated, trials, grid, cell_dirs, deflation, overfitting)
