"""Every validation rule, with errors that name the file, row and column."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ml.data import DataValidationError, LoadOptions, load_bars, resolve_dataset
from rlops_core.errors import RlopsError
from tests.builders import good_rows, write_csv


def issues_of(paths: list[str], options: LoadOptions | None = None) -> list[str]:
    with pytest.raises(DataValidationError) as caught:
        load_bars(paths, options)
    return [str(issue) for issue in caught.value.issues]


def test_good_csv_loads_with_aliases_case_insensitively(tmp_path: Path) -> None:
    path = tmp_path / "spy.csv"
    frame = pd.DataFrame(good_rows())
    frame.columns = ["Date", "OPEN", "High", "low", "Close", "Volume"]
    frame["Adj Close"] = frame["Close"]
    frame.to_csv(path, index=False)
    bars = load_bars([str(path)])
    assert bars.symbols == ("SPY",)
    assert list(bars.frame.columns) == ["timestamp", "symbol", "open", "high", "low", "close", "volume", "adj_close"]
    assert str(bars.frame["timestamp"].dt.tz) == "UTC"
    assert bars.periods_per_year == 252.0


def test_parquet_multi_asset_with_symbol_column(tmp_path: Path) -> None:
    rows = [dict(r, ticker="AAA") for r in good_rows()] + [dict(r, ticker="BBB") for r in good_rows()]
    path = tmp_path / "two.parquet"
    pd.DataFrame(rows).to_parquet(path)
    bars = load_bars([str(path)])
    assert bars.symbols == ("AAA", "BBB")
    panel = bars.panel()
    assert panel.close.shape == (5, 2)


def test_folder_of_one_file_per_symbol(tmp_path: Path) -> None:
    for name in ("aaa", "bbb"):
        write_csv(tmp_path / f"{name}.csv", good_rows())
    assert load_bars([str(tmp_path)]).symbols == ("AAA", "BBB")


def test_naive_timestamps_read_in_the_stated_zone(tmp_path: Path) -> None:
    rows = good_rows(3)
    for row in rows:
        row["date"] = f"{row['date']} 09:30"
    write_csv(tmp_path / "x.csv", rows)
    bars = load_bars([str(tmp_path / "x.csv")], LoadOptions(tz="America/New_York"))
    assert bars.frame["timestamp"].iloc[0] == pd.Timestamp("2024-01-01 14:30", tz="UTC")


def test_hourly_bars_have_intraday_periods_per_year(tmp_path: Path) -> None:
    stamps = pd.date_range("2024-01-02 14:00", periods=7, freq="h", tz="UTC")
    rows = [{"timestamp": s.isoformat(), "open": 1, "high": 1, "low": 1, "close": 1, "volume": 1} for s in stamps]
    write_csv(tmp_path / "h.csv", rows)
    bars = load_bars([str(tmp_path / "h.csv")])
    assert bars.bar_spacing == pd.Timedelta(hours=1)
    assert bars.periods_per_year == 252 * 7


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("close", "", "row 3 column 'close': value is missing"),
        ("close", "nan", "row 3 column 'close': value is NaN"),
        ("close", "abc", "row 3 column 'close': not a number: 'abc'"),
        ("open", "inf", "row 3 column 'open': value is infinite"),
        ("low", "-1", "row 3 column 'low': price must be positive (got -1.0)"),
        ("open", "0", "row 3 column 'open': price must be positive (got 0.0)"),
        ("volume", "-5", "row 3 column 'volume': volume must be >= 0 (got -5.0)"),
        ("high", "10.5", "row 3 column 'high': high 10.5 is below max(open 12.0, close 13.0)"),
        ("low", "12.5", "row 3 column 'low': low 12.5 is above min(open 12.0, close 13.0)"),
        ("date", "not-a-date", "row 3 column 'timestamp': cannot parse timestamp 'not-a-date'"),
        ("date", "", "row 3 column 'timestamp': timestamp is missing"),
    ],
)
def test_each_bad_value_is_named_by_file_row_and_column(tmp_path: Path, column: str, value: str, expected: str) -> None:
    rows = good_rows()
    rows[2][column] = value
    path = tmp_path / "bad.csv"
    write_csv(path, rows)
    found = issues_of([str(path)])
    assert any(issue.startswith(f"{path} {expected}") for issue in found), found


def test_duplicate_and_unsorted_timestamps_are_rejected_not_reordered(tmp_path: Path) -> None:
    rows = good_rows()
    rows[2]["date"] = rows[1]["date"]
    write_csv(tmp_path / "dup.csv", rows)
    assert any("row 3 column 'timestamp': duplicate timestamp" in i for i in issues_of([str(tmp_path / "dup.csv")]))
    rows = good_rows()
    rows[3], rows[4] = rows[4], rows[3]
    write_csv(tmp_path / "unsorted.csv", rows)
    found = issues_of([str(tmp_path / "unsorted.csv")])
    assert any("row 5 column 'timestamp'" in i and "rows must be sorted by time" in i for i in found), found


def test_missing_and_ambiguous_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame(good_rows()).drop(columns=["volume"])
    frame.to_csv(tmp_path / "novol.csv", index=False)
    assert any("column 'volume': missing required column" in i for i in issues_of([str(tmp_path / "novol.csv")]))
    frame = pd.DataFrame(good_rows())
    frame["timestamp"] = frame["date"]
    frame.to_csv(tmp_path / "two_dates.csv", index=False)
    found = issues_of([str(tmp_path / "two_dates.csv")])
    assert any("columns 'date' and 'timestamp' both mean 'timestamp'" in i for i in found)


def test_empty_header_only_malformed_and_unsupported_files(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    assert issues_of([str(tmp_path / "empty.csv")]) == [f"{tmp_path / 'empty.csv'}: file is empty"]
    (tmp_path / "header.csv").write_text("date,open,high,low,close,volume\n")
    assert issues_of([str(tmp_path / "header.csv")]) == [f"{tmp_path / 'header.csv'}: file has a header but no rows"]
    (tmp_path / "broken.parquet").write_bytes(b"this is not parquet")
    assert "cannot parse file" in issues_of([str(tmp_path / "broken.parquet")])[0]
    (tmp_path / "prices.xlsx").write_bytes(b"x")
    assert "unsupported file type" in issues_of([str(tmp_path / "prices.xlsx")])[0]
    with pytest.raises(RlopsError, match="no such file"):
        load_bars([str(tmp_path / "absent.csv")])


def test_every_issue_is_reported_not_just_the_first(tmp_path: Path) -> None:
    rows = good_rows()
    rows[0]["close"] = "x"
    rows[4]["volume"] = "-1"
    write_csv(tmp_path / "many.csv", rows)
    found = issues_of([str(tmp_path / "many.csv")])
    assert any("row 1 column 'close'" in i for i in found)
    # the volume rule runs only once every value parses, so fix the first and the second appears
    rows[0]["close"] = 11
    write_csv(tmp_path / "many.csv", rows)
    assert any("row 5 column 'volume'" in i for i in issues_of([str(tmp_path / "many.csv")]))


def test_same_symbol_from_two_files_is_an_error(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", [dict(r, symbol="X") for r in good_rows()])
    write_csv(tmp_path / "b.csv", [dict(r, symbol="X") for r in good_rows(start="2025-01-01")])
    assert any("symbol 'X' also comes from" in i for i in issues_of([str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]))


def test_gaps_are_reported_never_filled_and_can_be_errors(tmp_path: Path) -> None:
    rows = good_rows(10)
    del rows[3:8]  # a missing trading week
    write_csv(tmp_path / "gappy.csv", rows)
    bars = load_bars([str(tmp_path / "gappy.csv")])
    assert len(bars.frame) == 5
    assert len(bars.gaps) == 1
    assert "no bars between 2024-01-03" in str(bars.gaps[0])
    found = issues_of([str(tmp_path / "gappy.csv")], LoadOptions(gap_policy="error"))
    assert "gap in time" in found[0]


def test_unaligned_symbols_need_an_explicit_alignment(tmp_path: Path) -> None:
    rows = [dict(r, symbol="A") for r in good_rows()] + [dict(r, symbol="B") for r in good_rows()[1:]]
    write_csv(tmp_path / "ab.csv", rows)
    bars = load_bars([str(tmp_path / "ab.csv")])
    with pytest.raises(RlopsError, match="B lack a bar at 2024-01-01"):
        bars.panel()
    assert bars.panel(align="intersection").close.shape == (4, 2)


def test_named_datasets_and_unknown_names() -> None:
    bars = resolve_dataset("sp500")
    assert len(bars.frame) == 5031
    assert bars.symbols == ("SPX",)
    assert resolve_dataset("us_indices").panel().close.shape == (5031, 2)
    with pytest.raises(RlopsError, match="dataset 'sp501' is neither a named dataset"):
        resolve_dataset("sp501")
