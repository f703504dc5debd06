"""`parquet_bytes` against pandas' own `to_parquet`: the same bytes for every layout it takes over, and the
layouts it does not know handed to pandas."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from ml.data.parquet_bytes import _layout, parquet_bytes


def _pandas_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


def _timeseries(bars: int, start: str = "2020-01-01") -> pd.DataFrame:
    """A backtest's timeseries layout: float columns on a named, time-zone-aware bar index, NaN and inf included."""
    rng = np.random.default_rng(bars)
    index = pd.date_range(start, periods=bars, freq="D", tz="UTC", name="timestamp")
    frame = pd.DataFrame({name: rng.normal(size=bars) for name in ("equity", "returns", "weight_SPX")}, index=index)
    frame.iloc[0, 1], frame.iloc[-1, 2] = np.nan, np.inf
    return frame


def _trades(rows: int) -> pd.DataFrame:
    """A backtest's trades layout: strings, times with NaT for open trades, floats and flags on a RangeIndex."""
    stamps = pd.date_range("2021-03-01", periods=rows, freq="D", tz="UTC")
    return pd.DataFrame(
        {
            "symbol": pd.array([f"S{i % 3}" for i in range(rows)], dtype="str"),
            "entry_time": stamps.array,
            "exit_time": stamps.array.take(np.where(np.arange(rows) % 4 == 3, -1, np.arange(rows)), allow_fill=True),
            "pnl": np.linspace(-1, 1, rows),
            "bars": np.arange(rows, dtype=np.int64),
            "open": np.arange(rows) % 4 == 3,
        }
    )


@pytest.mark.parametrize(
    "frame",
    [
        _timeseries(1),
        _timeseries(700),
        _timeseries(300, start="1999-12-31"),  # a second frame of the same layout reuses the first one's schema
        _trades(1),
        _trades(257),
        _trades(40).iloc[5:],  # a RangeIndex that does not start at 0
        _timeseries(50).rename_axis(None),  # an unnamed index is stored as __index_level_0__
    ],
)
def test_the_bytes_are_pandas_own(frame: pd.DataFrame) -> None:
    assert _layout(frame) is not None  # taken over, not handed to pandas
    ours = parquet_bytes(frame)
    assert ours == _pandas_bytes(frame)
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(ours)), frame, check_freq=False)  # freq is not stored


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame([], columns=["symbol", "pnl"]),  # object columns: an empty trades table
        pd.DataFrame({"a": [1.0, 2.0]}, index=pd.Index(["x", "y"], name="key")),  # a string index
        pd.DataFrame({"a": [{"nested": 1}, None]}),  # objects
    ],
)
def test_layouts_it_does_not_know_go_to_pandas(frame: pd.DataFrame) -> None:
    assert _layout(frame) is None
    assert parquet_bytes(frame) == _pandas_bytes(frame)
