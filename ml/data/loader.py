"""Read OHLCV files (CSV or Parquet, local or s3://), map their columns, and validate every row.

Nothing is repaired: a file with any problem is rejected with every issue it has, each naming its file, row
(data rows count from 1) and column. Gaps in time are reported, never filled.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

import numpy as np
import pandas as pd

from ml.data import columns as col
from ml.data import storage
from ml.data.bars import Bars, Gap
from ml.data.calendar import DAILY_MIN_SPACING, check_declared
from ml.data.errors import DataIssue, DataValidationError
from rlops_core.errors import RlopsError

TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
DAILY_MAX_SPACING = pd.Timedelta(days=4)  # a long weekend is not a gap; a missing trading week is
INTRADAY_GAP_FACTOR = 1.5


@dataclass(frozen=True)
class LoadOptions:
    """How to read raw files. `tz` is the zone naive timestamps are read in; all output is UTC."""

    tz: str = "UTC"
    gap_policy: Literal["report", "error"] = "report"
    symbol: str | None = None  # for single-asset files without a symbol column; default: the file's stem
    periods_per_year: float | None = None  # declared bars per year; default: inferred from the calendar

    def __post_init__(self) -> None:
        check_tz(self.tz)
        check_declared(self.periods_per_year, "load options")
        if self.gap_policy not in ("report", "error"):
            raise RlopsError(f"gap policy must be report or error (got '{self.gap_policy}')")


def check_tz(tz: str, where: str = "time zone") -> None:
    """Refuse an unknown zone before any file is read, naming `where` it came from (a flag, a setting)."""
    try:
        pd.Timestamp("2000-01-01").tz_localize(tz)
    except Exception as exc:  # pytz, zoneinfo and dateutil each raise their own kind for an unknown name
        raise RlopsError(
            f"{where} '{tz}': unknown time zone; use an IANA name such as UTC, America/New_York or Europe/London"
        ) from exc


def load_bars(sources: Sequence[str], options: LoadOptions | None = None, name: str | None = None) -> Bars:
    """Load, validate and combine files or folders of files (one per symbol, or with a symbol column)."""
    options = options or LoadOptions()
    files: list[str] = []
    for source in sources:
        if (storage.is_s3(source) and not source.endswith(TABLE_SUFFIXES)) or _is_dir(source):
            listed = storage.list_files(source, TABLE_SUFFIXES)
            if not listed:
                raise RlopsError(f"{source}: no CSV or Parquet files in this folder")
            files.extend(listed)
        else:
            files.append(source)
    if not files:
        raise RlopsError("no data sources given")
    frames: list[pd.DataFrame] = []
    issues: list[DataIssue] = []
    owner: dict[str, str] = {}
    for file in files:
        frame, found = read_validated(file, options)
        issues.extend(found)
        if frame is None:
            continue
        for symbol in frame[col.SYMBOL].unique():
            if symbol in owner:
                issues.append(DataIssue(file, f"symbol '{symbol}' also comes from {owner[symbol]}"))
            owner[symbol] = file
        frames.append(frame)
    if issues:
        raise DataValidationError(issues)
    combined = pd.concat(frames, ignore_index=True).sort_values([col.SYMBOL, col.TIMESTAMP], kind="stable")
    combined = combined.reset_index(drop=True)
    gaps = find_gaps(combined)
    if gaps and options.gap_policy == "error":
        raise DataValidationError([DataIssue(files[0], f"gap in time: {gap}") for gap in gaps])
    label = name or (PurePosixPath(files[0]).name if len(files) == 1 else f"{len(files)} files")
    return Bars(frame=combined, name=label, gaps=tuple(gaps), declared_periods_per_year=options.periods_per_year)


def _is_dir(source: str) -> bool:
    from pathlib import Path

    return not storage.is_s3(source) and Path(source).is_dir()


def read_table(location: str) -> pd.DataFrame:
    """The raw table of one file, as strings/numbers exactly as stored."""
    lower = location.lower()
    if not lower.endswith(TABLE_SUFFIXES):
        raise DataValidationError(
            [DataIssue(location, f"unsupported file type; expected one of {', '.join(TABLE_SUFFIXES)}")]
        )
    raw = storage.read_bytes(location)
    if not raw.strip():
        raise DataValidationError([DataIssue(location, "file is empty")])
    try:
        if lower.endswith((".parquet", ".pq")):
            return pd.read_parquet(io.BytesIO(raw))
        return pd.read_csv(
            io.BytesIO(raw), dtype=str, keep_default_na=False, compression="gzip" if lower.endswith(".gz") else None
        )
    except Exception as exc:  # the parser's own message says what is malformed; pass it on with the file
        raise DataValidationError([DataIssue(location, f"cannot parse file: {exc}")]) from exc


def read_validated(location: str, options: LoadOptions) -> tuple[pd.DataFrame | None, list[DataIssue]]:
    """One file, mapped to canonical columns and checked row by row. Returns (frame, []) or (None, issues)."""
    try:
        raw = read_table(location)
    except DataValidationError as exc:
        return None, exc.issues
    return validate_table(raw, location, options)


def validate_table(
    raw: pd.DataFrame, location: str, options: LoadOptions
) -> tuple[pd.DataFrame | None, list[DataIssue]]:
    """Map a raw table's columns and check every row; `location` names it in every issue."""
    if raw.empty:
        return None, [DataIssue(location, "file has a header but no rows")]
    renamed, issues = _map_columns(raw, location)
    if issues:
        return None, issues
    frame = pd.DataFrame(index=renamed.index)
    timestamps, ts_issues = _parse_timestamps(renamed[col.TIMESTAMP], location, options.tz)
    issues.extend(ts_issues)
    frame[col.TIMESTAMP] = timestamps
    if col.SYMBOL in renamed:
        symbols = renamed[col.SYMBOL].astype(str).str.strip()
        for row in np.flatnonzero((symbols == "").to_numpy()):
            issues.append(DataIssue(location, "symbol is empty", int(row) + 1, col.SYMBOL))
        frame[col.SYMBOL] = symbols
    else:
        stem = PurePosixPath(location).name.split(".")[0]
        frame[col.SYMBOL] = options.symbol or stem.upper()
    for name in col.NUMERIC:
        if name in renamed:
            values, value_issues = _parse_numbers(renamed[name], location, name)
            frame[name] = values
            issues.extend(value_issues)
    if issues:
        return None, issues
    issues.extend(_check_bar_rules(frame, location))
    issues.extend(_check_order(frame, location))
    return (None, issues) if issues else (frame, [])


def _map_columns(raw: pd.DataFrame, location: str) -> tuple[pd.DataFrame, list[DataIssue]]:
    issues: list[DataIssue] = []
    mapping: dict[str, str] = {}
    for header in raw.columns:
        name = col.canonical(header)
        if name is None:
            continue
        if name in mapping.values():
            other = next(k for k, v in mapping.items() if v == name)
            issues.append(DataIssue(location, f"columns '{other}' and '{header}' both mean '{name}'", 0, str(header)))
        mapping[str(header)] = name
    found = set(mapping.values())
    for required in col.REQUIRED:
        if required not in found:
            have = ", ".join(str(c) for c in raw.columns)
            issues.append(DataIssue(location, f"missing required column (found: {have})", 0, required))
    return raw.rename(columns=mapping)[list(mapping.values())], issues


def _parse_timestamps(values: pd.Series, location: str, tz: str) -> tuple[pd.Series, list[DataIssue]]:
    """Vectorised parse for the common case; rows it cannot read are re-read one by one for a precise error."""
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values.dtype):
        parsed = pd.Series(pd.DatetimeIndex(values), index=values.index)
    else:
        text = values.astype(str).str.strip()
        try:
            parsed = pd.to_datetime(text, errors="coerce")
        except (ValueError, TypeError):  # mixed zones or formats: fall back to one row at a time
            return _parse_timestamps_by_row(text, location, tz)
        if parsed.isna().any():
            return _parse_timestamps_by_row(text, location, tz)
    index = pd.DatetimeIndex(parsed)
    index = index.tz_localize(tz) if index.tz is None else index
    return pd.Series(index.tz_convert("UTC").as_unit("ns"), index=values.index), []


def _parse_timestamps_by_row(text: pd.Series, location: str, tz: str) -> tuple[pd.Series, list[DataIssue]]:
    issues: list[DataIssue] = []
    stamps: list[pd.Timestamp] = []
    for row, value in enumerate(text, start=1):
        if value in {"", "nan", "NaN", "NaT", "None"}:
            issues.append(DataIssue(location, "timestamp is missing", row, col.TIMESTAMP))
            continue
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError) as exc:
            issues.append(DataIssue(location, f"cannot parse timestamp '{value}' ({exc})", row, col.TIMESTAMP))
            continue
        stamps.append((stamp.tz_localize(tz) if stamp.tzinfo is None else stamp).tz_convert("UTC"))
    if issues:
        return pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]"), issues
    return pd.Series(pd.DatetimeIndex(stamps).as_unit("ns"), index=text.index), []


def _parse_numbers(values: pd.Series, location: str, name: str) -> tuple[pd.Series, list[DataIssue]]:
    numbers = pd.to_numeric(values.replace("", np.nan), errors="coerce").astype(np.float64)
    issues: list[DataIssue] = []
    raw_missing = values.isna() | (values.astype(str).str.strip() == "")
    for row in np.flatnonzero(numbers.isna().to_numpy()):
        if raw_missing.iloc[row]:
            message = "value is missing"
        elif str(values.iloc[row]).strip().lower() == "nan":
            message = "value is NaN"
        else:
            message = f"not a number: '{values.iloc[row]}'"
        issues.append(DataIssue(location, message, int(row) + 1, name))
    for row in np.flatnonzero(np.isinf(numbers.to_numpy())):
        issues.append(DataIssue(location, f"value is infinite ({values.iloc[row]})", int(row) + 1, name))
    return numbers, issues


def _check_bar_rules(frame: pd.DataFrame, location: str) -> list[DataIssue]:
    issues: list[DataIssue] = []

    def report(mask: pd.Series, column: str, message: str) -> None:
        for row in np.flatnonzero(mask.to_numpy()):
            values = {str(k): v for k, v in frame.iloc[row].to_dict().items()}
            issues.append(DataIssue(location, message.format(**values), int(row) + 1, column))

    prices = [c for c in (*col.PRICE_COLUMNS, col.ADJ_CLOSE) if c in frame]
    for name in prices:
        report(frame[name] <= 0, name, f"price must be positive (got {{{name}}})")
    report(frame[col.VOLUME] < 0, col.VOLUME, "volume must be >= 0 (got {volume})")
    report(
        frame[col.HIGH] < frame[[col.OPEN, col.CLOSE]].max(axis=1),
        col.HIGH,
        "high {high} is below max(open {open}, close {close})",
    )
    report(
        frame[col.LOW] > frame[[col.OPEN, col.CLOSE]].min(axis=1),
        col.LOW,
        "low {low} is above min(open {open}, close {close})",
    )
    return issues


def _check_order(frame: pd.DataFrame, location: str) -> list[DataIssue]:
    """Timestamps must be unique and strictly increasing per symbol, in file order (nothing is re-sorted)."""
    issues: list[DataIssue] = []
    for symbol, group in frame.groupby(col.SYMBOL, sort=False):
        stamps = group[col.TIMESTAMP]
        previous = stamps.shift(1)
        for position in np.flatnonzero((stamps == previous).to_numpy()):
            row = int(group.index[int(position)]) + 1
            issues.append(
                DataIssue(
                    location,
                    f"duplicate timestamp {stamps.iloc[position]} for '{symbol}'",
                    row,
                    col.TIMESTAMP,
                )
            )
        for position in np.flatnonzero((stamps < previous).to_numpy()):
            row = int(group.index[int(position)]) + 1
            issues.append(
                DataIssue(
                    location,
                    f"timestamp {stamps.iloc[position]} for '{symbol}' is earlier than the row before it "
                    f"({previous.iloc[position]}); rows must be sorted by time",
                    row,
                    col.TIMESTAMP,
                )
            )
    return issues


def find_gaps(frame: pd.DataFrame) -> list[Gap]:
    """Missing stretches per symbol: beyond a long weekend for daily bars, a missing bar within a session for
    intraday bars (overnight closes are not gaps)."""
    gaps: list[Gap] = []
    for symbol, group in frame.groupby(col.SYMBOL):
        stamps = group[col.TIMESTAMP].reset_index(drop=True)
        spacing = stamps.diff()
        if len(stamps) < 3:
            continue
        median = pd.Timedelta(spacing.median())
        if median >= DAILY_MIN_SPACING:
            mask = spacing > DAILY_MAX_SPACING
        else:
            same_day = stamps.dt.date == stamps.shift(1).dt.date
            mask = (same_day & (spacing > INTRADAY_GAP_FACTOR * median)) | (spacing > DAILY_MAX_SPACING)
        for position in np.flatnonzero(mask.to_numpy()):
            gaps.append(Gap(str(symbol), stamps.iloc[position - 1], stamps.iloc[position]))
    return gaps
