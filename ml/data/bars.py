"""Validated OHLCV bars in one long table, and their aligned (time x asset) array view."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml.data import columns as col
from ml.data.calendar import Calendar, infer_frame_calendar
from rlops_core.errors import RlopsError

FloatArray = npt.NDArray[np.float64]


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
    declared_periods_per_year: float | None = None
    """Bars per year as the dataset declares it (a store's manifest); None: inferred from the calendar."""

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
    def calendar(self) -> Calendar:
        """The calendar the timestamps follow (trading days, every day, weekly, intraday, ...)."""
        return infer_frame_calendar(self.frame, col.SYMBOL, col.TIMESTAMP, f"dataset '{self.name}'")

    @property
    def periods_per_year(self) -> float:
        """What annualises this data's metrics: the declared value if any, else the calendar's (ml.data.calendar)."""
        if self.declared_periods_per_year is not None:
            return float(self.declared_periods_per_year)
        return self.calendar.periods_per_year

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
