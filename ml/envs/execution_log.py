"""The per-step ledger of one account: fills, costs, positions and equity, as the backtester reads them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.envs.execution import AccountState, StepRecord
from ml.envs.market import MarketData


class ExecutionLog:
    """Rows are bars: the episode's first decision bar (starting equity, no fills), then each fill bar."""

    def __init__(self, market: MarketData) -> None:
        self.market = market
        self.clear()

    def clear(self) -> None:
        self.bars: list[int] = []
        self.cash: list[float] = []
        self.equity: list[float] = []
        self.shares: list[np.ndarray] = []
        self.fill_qty: list[np.ndarray] = []
        self.fill_price: list[np.ndarray] = []
        self.target: list[np.ndarray] = []
        self.commission: list[float] = []
        self.slippage: list[float] = []
        self.borrow: list[float] = []

    def start(self, state: AccountState, row: int) -> None:
        self.clear()
        zeros = np.zeros(self.market.num_assets)
        self._add(int(state.t[row]), state, row, zeros, zeros, zeros, 0.0, 0.0, 0.0)

    def append(self, state: AccountState, record: StepRecord, row: int) -> None:
        self._add(
            int(state.t[row]),
            state,
            row,
            record.fill_qty[row].copy(),
            record.fill_price[row].copy(),
            record.target[row].copy(),
            float(record.commission[row]),
            float(record.slippage[row]),
            float(record.borrow[row]),
        )

    def _add(
        self,
        bar: int,
        state: AccountState,
        row: int,
        qty: np.ndarray,
        price: np.ndarray,
        target: np.ndarray,
        commission: float,
        slippage: float,
        borrow: float,
    ) -> None:
        self.bars.append(bar)
        self.cash.append(float(state.cash[row]))
        self.equity.append(float(state.equity[row]))
        self.shares.append(state.shares[row].copy())
        self.fill_qty.append(qty)
        self.fill_price.append(price)
        self.target.append(target)
        self.commission.append(commission)
        self.slippage.append(slippage)
        self.borrow.append(borrow)

    def to_frame(self) -> pd.DataFrame:
        """One row per bar; per-asset columns are suffixed with the symbol (shares_SPX, fill_qty_SPX, ...)."""
        index = self.market.timestamps[self.bars]
        frame = pd.DataFrame(
            {
                "bar": self.bars,
                "cash": self.cash,
                "equity": self.equity,
                "commission": self.commission,
                "slippage": self.slippage,
                "borrow": self.borrow,
            },
            index=pd.DatetimeIndex(index, name="timestamp"),
        )
        for name, rows in (
            ("shares", self.shares),
            ("fill_qty", self.fill_qty),
            ("fill_price", self.fill_price),
            ("target", self.target),
        ):
            stacked = np.vstack(rows)
            for a, symbol in enumerate(self.market.symbols):
                frame[f"{name}_{symbol}"] = stacked[:, a]
        return frame
