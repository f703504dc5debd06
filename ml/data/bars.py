"""Validated OHLCV bars in one long table, and their aligned (time x asset) array view."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml.data import columns as col
from rlops_core.errors import RlopsError

FloatArray = npt.NDArray[np.float64]
DAILY_MIN_SPACING = pd.Timedelta(hours=20)
TRADING_DAYS_PER_YEAR = 252


@dataclass(frozen=True)
class Gap:
    symbol: str
    after: pd.Timestamp
    before: pd.Timestamp

    def __str__(self) -> str:
        return f"{self.symbol}: no bars between {self.after.isoformat()} and {self.before.isoformat()}"


class Panel(NamedTuple):
    """Prices aligned on one time axis: every array is (time, asset), float64."""

    timestamps: pd.DatetimeIndex
    symbols: tuple[str, ...]
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    @property
    def num_bars(self) -> int:
        return len(self.timestamps)


@dataclass(frozen=True)
class Bars:
    """Bars for one or more symbols: sorted by (symbol, timestamp), timestamps tz-aware UTC, all values valid.

    Only the loader builds these, after validation, so holders can trust every row.
    """

    frame: pd.DataFrame
    name: str
    gaps: tuple[Gap, ...] = field(default=())

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(sorted(self.frame[col.SYMBOL].unique()))

    @property
    def bar_spacing(self) -> pd.Timedelta:
        """Median time between consecutive bars of a symbol: the data's bar frequency."""
        spacing = self.frame.groupby(col.SYMBOL)[col.TIMESTAMP].diff().dropna()
        if spacing.empty:
            raise RlopsError(f"dataset '{self.name}' has too few bars to tell its frequency")
        return pd.Timedelta(spacing.median())

    @property
    def periods_per_year(self) -> float:
        """252 for daily bars; for intraday bars, 252 x the median number of bars per trading day."""
        if self.bar_spacing >= DAILY_MIN_SPACING:
            return float(TRADING_DAYS_PER_YEAR)
        per_day = self.frame.groupby([col.SYMBOL, self.frame[col.TIMESTAMP].dt.date]).size().median()
        return float(TRADING_DAYS_PER_YEAR * per_day)

    def panel(self, align: Literal["strict", "intersection"] = "strict") -> Panel:
        """The (time x asset) view. `strict` requires every symbol to have the same timestamps; `intersection`
        keeps only the timestamps all symbols share (an explicit choice, never a silent fill)."""
        wide = self.frame.pivot(index=col.TIMESTAMP, columns=col.SYMBOL)
        complete = wide.notna().all(axis=1)
        if not complete.all():
            if align == "strict":
                missing = wide[col.CLOSE].isna().to_numpy()
                first_row = int(np.flatnonzero(missing.any(axis=1))[0])
                first_time = wide.index[first_row]
                lacking = [str(s) for s, gone in zip(wide[col.CLOSE].columns, missing[first_row], strict=True) if gone]
                raise RlopsError(
                    f"dataset '{self.name}': symbols do not share timestamps ({', '.join(lacking)} "
                    f"lack a bar at {first_time.isoformat()}); pass align='intersection' to keep common bars only"
                )
            wide = wide[complete]
        symbols = tuple(str(s) for s in wide[col.CLOSE].columns)

        def arr(name: str) -> FloatArray:
            return np.ascontiguousarray(wide[name].to_numpy(dtype=np.float64))

        return Panel(
            timestamps=pd.DatetimeIndex(wide.index),
            symbols=symbols,
            open=arr(col.OPEN),
            high=arr(col.HIGH),
            low=arr(col.LOW),
            close=arr(col.CLOSE),
            volume=arr(col.VOLUME),
        )
