"""Bars per year, inferred from the timestamps' calendar: what annualises every metric and the borrow rate.

Rules (docs/metrics.md, "Annualisation"), on each symbol's own bar timestamps (UTC):

- spacing of at least 5 days: round(365.25 / median spacing in days) -- weekly 52, monthly 12, quarterly 4;
- daily bars on every day of the week (crypto): 365;
- daily bars on trading days: 252 exactly, whatever the holidays, because 252 is the convention every quoted
  Sharpe ratio of daily exchange data uses;
- intraday around the clock (bars on every day of the week, each day covered): 365 x bars in 24 hours;
- intraday on exchange hours (or 24 x 5): 252 x the median number of bars per trading day.

A dataset may declare its own value (an ingest flag stored in the manifest), which wins over all of these.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from rlops_core.errors import RlopsError

TRADING_DAYS_PER_YEAR = 252
CALENDAR_DAYS_PER_YEAR = 365
DAILY_MIN_SPACING = pd.Timedelta(hours=20)
PERIODIC_MIN_SPACING = pd.Timedelta(days=5)
# A seven-day calendar has almost no step of two days or more; a trading-day calendar has one every weekend.
# A share this low also lets a 24/7 series miss a few days without turning into a trading-day calendar.
MAX_LONG_STEP_SHARE = 0.1


@dataclass(frozen=True)
class Calendar:
    """The inferred calendar: its bars per year and, for messages and `rlops data show`, what it is."""

    periods_per_year: float
    kind: str


def infer_calendar(timestamps: pd.DatetimeIndex | pd.Series, where: str = "dataset") -> Calendar:
    """The calendar of one symbol's sorted bar timestamps."""
    stamps = pd.DatetimeIndex(timestamps)
    if len(stamps) < 2:
        raise RlopsError(f"{where} has too few bars to tell its frequency")
    steps = pd.Series(stamps[1:] - stamps[:-1])
    spacing = pd.Timedelta(steps.median())
    if spacing >= PERIODIC_MIN_SPACING:
        per_year = max(1, round(pd.Timedelta(days=365.25) / spacing))
        names = {52: "weekly", 12: "monthly", 4: "quarterly", 1: "yearly"}
        return Calendar(float(per_year), names.get(per_year, f"every {spacing.days} days"))
    every_weekday = len(set(stamps.day_of_week)) == 7
    if spacing >= DAILY_MIN_SPACING:
        long_steps = float((steps >= pd.Timedelta(days=2)).mean())
        if every_weekday and long_steps < MAX_LONG_STEP_SHARE:
            return Calendar(float(CALENDAR_DAYS_PER_YEAR), "daily, every day of the week")
        return Calendar(float(TRADING_DAYS_PER_YEAR), "daily, trading days")
    per_full_day = pd.Timedelta(days=1) / spacing
    per_date = float(pd.Series(stamps.date).value_counts().median())
    if every_weekday and per_date >= 0.8 * per_full_day:
        return Calendar(CALENDAR_DAYS_PER_YEAR * per_full_day, f"intraday around the clock, {per_full_day:g} a day")
    return Calendar(TRADING_DAYS_PER_YEAR * per_date, f"intraday on trading days, {per_date:g} a day")


def infer_frame_calendar(frame: pd.DataFrame, symbol_column: str, time_column: str, where: str) -> Calendar:
    """The calendar of a long (symbol, timestamp) table: that of the symbol with the most bars."""
    counts = frame[symbol_column].value_counts()
    if counts.empty:
        raise RlopsError(f"{where} has no bars")
    longest = counts.index[0]
    return infer_calendar(frame.loc[frame[symbol_column] == longest, time_column], where)


def check_declared(value: float | None, where: str) -> float | None:
    """A declared bars-per-year value, refused unless it is a positive finite number."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise RlopsError(f"{where}: periods_per_year must be a positive number (got {value!r})") from exc
    if not number > 0 or number == float("inf"):
        raise RlopsError(f"{where}: periods_per_year must be a positive number (got {value!r})")
    return number
