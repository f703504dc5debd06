"""The per-step ledger of one account: fills, costs, positions and equity, as the backtester reads them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml.envs.execution import AccountState, StepRecord
from ml.envs.market import MarketData

_PER_ASSET = ("shares", "fill_qty", "fill_price", "target")


@dataclass(frozen=True)
class FillLog:
    """One account's rows as arrays: the episode's first decision bar (starting equity, no fills), then each fill
    bar. Per-asset arrays are (rows, assets) in `symbols` order. What a backtest is scored from; `to_frame` is the
    table a person reads."""

    stamps: pd.DatetimeIndex  # each row's bar time, named "timestamp"
    symbols: tuple[str, ...]
    bars: npt.NDArray[np.int64]
    cash: npt.NDArray[np.float64]
    equity: npt.NDArray[np.float64]
    commission: npt.NDArray[np.float64]
    slippage: npt.NDArray[np.float64]
    borrow: npt.NDArray[np.float64]
    shares: npt.NDArray[np.float64]
    fill_qty: npt.NDArray[np.float64]
    fill_price: npt.NDArray[np.float64]
    target: npt.NDArray[np.float64]

    def to_frame(self) -> pd.DataFrame:
        """One row per bar; per-asset columns are suffixed with the symbol (shares_SPX, fill_qty_SPX, ...)."""
        columns: dict[str, npt.NDArray[np.generic]] = {
            "bar": self.bars,
            "cash": self.cash,
            "equity": self.equity,
            "commission": self.commission,
            "slippage": self.slippage,
            "borrow": self.borrow,
        }
        for name in _PER_ASSET:
            values = getattr(self, name)
            for a, symbol in enumerate(self.symbols):
                columns[f"{name}_{symbol}"] = np.ascontiguousarray(values[:, a])
        return pd.DataFrame(columns, index=self.stamps)


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

    def fill_log(self) -> FillLog:
        return FillLog(
            stamps=pd.DatetimeIndex(self.market.timestamps[self.bars], name="timestamp"),
            symbols=tuple(self.market.symbols),
            bars=np.asarray(self.bars, dtype=np.int64),
            cash=np.asarray(self.cash, dtype=np.float64),
            equity=np.asarray(self.equity, dtype=np.float64),
            commission=np.asarray(self.commission, dtype=np.float64),
            slippage=np.asarray(self.slippage, dtype=np.float64),
            borrow=np.asarray(self.borrow, dtype=np.float64),
            shares=np.vstack(self.shares),
            fill_qty=np.vstack(self.fill_qty),
            fill_price=np.vstack(self.fill_price),
            target=np.vstack(self.target),
        )

    def to_frame(self) -> pd.DataFrame:
        return self.fill_log().to_frame()
