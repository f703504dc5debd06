"""Round-trip trades rebuilt from the environment's fill log: entry, exit, size, prices, costs, PnL.

A trade opens when a position leaves zero (or flips sign) and closes when it returns to zero (or flips).
Adds move the average entry price; reductions realise PnL against it. A trade still open at the end of the
period is reported as open, valued at the last close.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

TRADE_COLUMNS = [
    "symbol",
    "direction",
    "entry_time",
    "exit_time",
    "size",
    "entry_price",
    "exit_price",
    "commission",
    "slippage",
    "pnl",
    "return",
    "open",
]


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


def extract_trades(
    log: pd.DataFrame, symbols: tuple[str, ...], open_prices: pd.DataFrame, commission_rate: float
) -> pd.DataFrame:
    """`log` is an ExecutionLog frame; `open_prices` the raw opens (same index) that slippage is measured from."""
    rows: list[dict[str, object]] = []
    # Every bar's Timestamp built in one pass: indexing the DatetimeIndex builds one per call, which cost more
    # than the rest of the loop.
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
