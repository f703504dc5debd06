"""Bars per year from the calendar of the timestamps, and a dataset's declared value winning over it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ml.data import LoadOptions, load_bars, resolve_dataset
from ml.data.calendar import infer_calendar
from ml.data.store import ingest, read_manifest
from rlops_core.errors import RlopsError
from tests.builders import good_rows, write_csv


def stamps(start: str, periods: int, freq: str, tz: str = "UTC") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=periods, freq=freq, tz=tz)


def trading_hours(days: pd.DatetimeIndex, first: str, bars: int, freq: str) -> pd.DatetimeIndex:
    """`bars` bars from `first` (UTC) on each of `days`: an exchange session."""
    return pd.DatetimeIndex(
        [t for day in days for t in pd.date_range(f"{day.date()} {first}", periods=bars, freq=freq, tz="UTC")]
    )


@pytest.mark.parametrize(
    ("timestamps", "expected", "kind"),
    [
        # Business days with holidays removed: still the 252 convention, exactly.
        (pd.bdate_range("2019-01-01", "2021-12-31", tz="UTC").delete([0, 15, 40, 100, 180]), 252, "trading days"),
        (stamps("2021-01-01", 800, "D"), 365, "every day"),
        (stamps("2015-01-02", 300, "W-FRI"), 52, "weekly"),
        (stamps("2000-01-31", 120, "ME"), 12, "monthly"),
        (stamps("2000-03-31", 60, "QE"), 4, "quarterly"),
        (stamps("2001-12-31", 20, "YE"), 1, "yearly"),
        # Exchange hours, 6.5 hours of half-hour bars (13 a day) on business days.
        (trading_hours(pd.bdate_range("2024-01-01", periods=60), "14:30", 13, "30min"), 252 * 13, "trading days"),
        # Around the clock: hourly bars every day of the week.
        (stamps("2024-01-01", 24 * 60, "h"), 365 * 24, "around the clock"),
        (stamps("2024-01-01", 4 * 24 * 30, "15min"), 365 * 96, "around the clock"),
        # 24 hours on five days (currencies): a trading-day calendar of 24 bars a day.
        (trading_hours(pd.bdate_range("2024-01-01", periods=40), "00:00", 24, "h"), 252 * 24, "trading days"),
    ],
)
def test_each_calendar_is_recognised(timestamps: pd.DatetimeIndex, expected: float, kind: str) -> None:
    calendar = infer_calendar(timestamps)
    assert calendar.periods_per_year == pytest.approx(expected)
    assert kind in calendar.kind


def test_trading_days_stamped_in_an_eastern_zone_stay_trading_days() -> None:
    # Tokyo's midnight is 15:00 UTC the day before: the bars fall on Sunday..Thursday in UTC, still five a week.
    tokyo = pd.bdate_range("2020-01-06", periods=500).tz_localize("Asia/Tokyo").tz_convert("UTC")
    assert infer_calendar(tokyo).periods_per_year == 252


def test_a_seven_day_series_missing_a_few_days_is_still_every_day() -> None:
    days = stamps("2022-01-01", 400, "D").delete([10, 50, 51, 200])
    assert infer_calendar(days).periods_per_year == 365


def test_a_single_bar_cannot_be_annualised() -> None:
    with pytest.raises(RlopsError, match="too few bars to tell its frequency"):
        infer_calendar(stamps("2024-01-01", 1, "D"), "dataset 'x'")


def test_the_built_in_daily_data_keeps_252() -> None:
    assert resolve_dataset("sp500").periods_per_year == 252.0


def crypto_rows(n: int) -> list[dict[str, object]]:
    return [
        {"date": s.strftime("%Y-%m-%d"), "open": 10, "high": 12, "low": 9, "close": 11, "volume": 1}
        for s in stamps("2024-01-01", n, "D")
    ]


def test_a_declared_value_wins_and_lives_in_the_store_manifest(tmp_path: Path) -> None:
    write_csv(tmp_path / "btc.csv", crypto_rows(60))
    raw = [str(tmp_path / "btc.csv")]
    assert load_bars(raw).periods_per_year == 365
    store = str(tmp_path / "store")
    ingest(raw, store)
    assert read_manifest(store).periods_per_year is None
    assert resolve_dataset(store).periods_per_year == 365
    # The same bars with a declared annualisation rewrite the manifest (not a no-op), and the store reads it back.
    declared = ingest(raw, store, LoadOptions(periods_per_year=360))
    assert declared.written and declared.manifest.periods_per_year == 360
    assert resolve_dataset(store).periods_per_year == 360
    assert not ingest(raw, store, LoadOptions(periods_per_year=360)).written


def test_a_bad_declared_value_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(RlopsError, match="periods_per_year must be a positive number"):
        LoadOptions(periods_per_year=0)
    write_csv(tmp_path / "x.csv", good_rows(10))
    store = tmp_path / "store"
    ingest([str(tmp_path / "x.csv")], str(store))
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["periods_per_year"] = -5
    (store / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RlopsError, match=r"manifest.json: periods_per_year must be a positive number \(got -5\)"):
        resolve_dataset(str(store))


def test_ingest_flag_declares_and_show_prints_it(tmp_path: Path) -> None:
    from tests.core.test_cli import rlops

    write_csv(tmp_path / "btc.csv", crypto_rows(30))
    store = str(tmp_path / "store")
    inferred = rlops("data", "show", str(tmp_path / "btc.csv"))
    assert "365 bars per year (daily, every day of the week)" in inferred.stdout
    assert (
        rlops("data", "ingest", str(tmp_path / "btc.csv"), "--to", store, "--periods-per-year", "360").returncode == 0
    )
    assert "360 bars per year (declared)" in rlops("data", "show", store).stdout
    refused = rlops("data", "ingest", str(tmp_path / "btc.csv"), "--to", store, "--periods-per-year", "-1")
    assert refused.returncode != 0
    assert "--periods-per-year: periods_per_year must be a positive number (got -1.0)" in refused.stderr
