"""The compiled round-trip walk against the plain Python walk it replaced (kept here as the reference)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from ml.backtest.trades import TRADE_COLUMNS, round_trips


@dataclass
class _OpenTrade:
    direction: float
    entry_time: pd.Timestamp
    avg_entry: float = 0.0
    position: float = 0.0
    size: float = 0.0
    exit_value: float = 0.0
    exit_qty: float = 0.0
    commission: float = 0.0
    slippage: float = 0.0
    gross_pnl: float = 0.0
    rows: list[int] = field(default_factory=list)

    def add(self, qty: float, price: float) -> None:
        new = abs(self.position) + qty
        self.avg_entry = (self.avg_entry * abs(self.position) + price * qty) / new
        self.position = self.direction * new
        self.size = max(self.size, new)

    def reduce(self, qty: float, price: float) -> None:
        self.gross_pnl += self.direction * qty * (price - self.avg_entry)
        self.exit_value += qty * price
        self.exit_qty += qty
        self.position -= self.direction * qty

    def row(self, symbol: str, exit_time: pd.Timestamp | None, mark: float | None) -> dict[str, object]:
        exit_price = self.exit_value / self.exit_qty if self.exit_qty and exit_time is not None else mark
        pnl = self.gross_pnl - self.commission - self.slippage
        if exit_time is None and mark is not None:  # open: unrealised part at the mark
            pnl += self.direction * abs(self.position) * (mark - self.avg_entry)
        basis = self.avg_entry * self.size
        return {
            "symbol": symbol,
            "direction": "long" if self.direction > 0 else "short",
            "entry_time": self.entry_time,
            "exit_time": exit_time if exit_time is not None else pd.NaT,
            "size": self.size,
            "entry_price": self.avg_entry,
            "exit_price": exit_price,
            "commission": self.commission,
            "slippage": self.slippage,
            "pnl": pnl,
            "return": pnl / basis if basis else 0.0,
            "open": exit_time is None,
        }


def reference_trades(
    log: pd.DataFrame, symbols: tuple[str, ...], open_prices: pd.DataFrame, commission_rate: float
) -> pd.DataFrame:
    rows: list[dict[str, object]] = []
    stamps = list(log.index)
    for symbol in symbols:
        qty_col, price_col = log[f"fill_qty_{symbol}"].to_numpy(), log[f"fill_price_{symbol}"].to_numpy()
        opens = open_prices[symbol].to_numpy()
        trade: _OpenTrade | None = None
        for i in np.flatnonzero(qty_col):
            qty, price = float(qty_col[i]), float(price_col[i])
            side = 1.0 if qty > 0 else -1.0
            remaining = abs(qty)
            unit_commission = price * commission_rate
            unit_slippage = abs(price - opens[i])
            if trade is not None and side != trade.direction:
                closing = min(remaining, abs(trade.position))
                trade.reduce(closing, price)
                trade.commission += closing * unit_commission
                trade.slippage += closing * unit_slippage
                remaining -= closing
                if abs(trade.position) <= 1e-12 * max(trade.size, 1.0):
                    rows.append(trade.row(symbol, stamps[i], None))
                    trade = None
            if remaining > 0:
                if trade is None:
                    trade = _OpenTrade(direction=side, entry_time=stamps[i])
                trade.add(remaining, price)
                trade.commission += remaining * unit_commission
                trade.slippage += remaining * unit_slippage
        if trade is not None:
            rows.append(trade.row(symbol, None, float(log[f"mark_{symbol}"].iloc[-1])))
    frame = pd.DataFrame(rows, columns=TRADE_COLUMNS)
    return frame.sort_values(["entry_time", "symbol"], kind="stable").reset_index(drop=True)


def extract_trades(
    log: pd.DataFrame, symbols: tuple[str, ...], open_prices: pd.DataFrame, commission_rate: float
) -> pd.DataFrame:
    """`round_trips` on the reference walk's input: a fill-log frame with each asset's `mark_` (close) column."""
    return round_trips(
        pd.DatetimeIndex(log.index),
        symbols,
        log[[f"fill_qty_{s}" for s in symbols]].to_numpy(),
        log[[f"fill_price_{s}" for s in symbols]].to_numpy(),
        open_prices[list(symbols)].to_numpy(),
        np.array([log[f"mark_{s}"].iloc[-1] for s in symbols]),
        commission_rate,
    )


def _fill_log(
    rng: np.random.Generator, bars: int, assets: int, fill_share: float
) -> tuple[pd.DataFrame, tuple[str, ...], pd.DataFrame]:
    """Random fills of mixed sizes and signs (adds, partial exits, exact exits, flips), symbols out of order."""
    index = pd.date_range("2020-01-01", periods=bars, freq="D", tz="UTC", name="timestamp")
    symbols = tuple(f"S{a}" for a in range(assets))[::-1]
    columns = {}
    for symbol in symbols:
        sizes = rng.choice([-3.0, -1.0, -0.5, 0.5, 1.0, 2.0, 3.0], bars)
        columns[f"fill_qty_{symbol}"] = np.where(rng.random(bars) < fill_share, sizes, 0.0)
        columns[f"fill_price_{symbol}"] = 100 + rng.normal(0, 1, bars)
        columns[f"mark_{symbol}"] = 100 + rng.normal(0, 1, bars)
    opens = pd.DataFrame({symbol: 100 + rng.normal(0, 1, bars) for symbol in symbols}, index=index)
    return pd.DataFrame(columns, index=index), symbols, opens


@pytest.mark.parametrize(("bars", "assets", "fill_share"), [(60, 1, 0.3), (300, 3, 0.5), (800, 2, 0.9), (40, 2, 0.05)])
def test_the_compiled_walk_equals_the_python_walk_to_the_bit(bars: int, assets: int, fill_share: float) -> None:
    rng = np.random.default_rng(bars * 10 + assets)
    compared = 0
    for _ in range(15):
        log, symbols, opens = _fill_log(rng, bars, assets, fill_share)
        ours = extract_trades(log, symbols, opens, commission_rate=0.001)
        theirs = reference_trades(log, symbols, opens, commission_rate=0.001)
        if theirs["exit_time"].isna().all():
            # Only open trades: pandas infers a time-zone-less all-NaT column from the reference's rows; ours keeps
            # the bars' type either way, which is the one difference.
            assert ours["exit_time"].dtype == ours["entry_time"].dtype
            theirs["exit_time"] = ours["exit_time"]
        pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
        compared += len(theirs)
    assert compared > 20  # trades were actually compared, closed and open


def test_no_fills_give_an_empty_table_with_the_trade_columns() -> None:
    log, symbols, opens = _fill_log(np.random.default_rng(0), 30, 2, 0.0)
    trades = extract_trades(log, symbols, opens, commission_rate=0.001)
    assert list(trades.columns) == TRADE_COLUMNS
    assert trades.empty
