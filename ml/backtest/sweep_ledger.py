"""A sweep's per-bar ledger of every (policy, market) account: what `ExecutionLog` records for one env.

The sweep itself keeps only equity, which is all a throughput run needs. A batch saves each cell's full result
(cash, costs, positions, fills, trades), so when asked the sweep also copies every account's state here after
each bar; `fill_log(p, m)` gives one account's rows exactly as `TradingEnv`'s log would have.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml.envs.execution_log import FillLog
from ml.envs.market import MarketData


@dataclass(frozen=True)
class Ledger:
    """Arrays indexed (policy, market, row[, asset]); row 0 is the starting point, row k the k-th fill bar."""

    bars: npt.NDArray[np.int64]
    cash: npt.NDArray[np.float64]
    costs: npt.NDArray[np.float64]  # (..., 3): commission, slippage, borrow
    shares: npt.NDArray[np.float64]
    fills: npt.NDArray[np.float64]  # (..., assets, 3): fill quantity, fill price, target weight

    @classmethod
    def empty(cls, policies: int, markets: int, rows: int, assets: int, first_bar: int, cash: float) -> Ledger:
        shape = (policies, markets, rows)
        ledger = cls(
            bars=np.empty(shape, dtype=np.int64),
            cash=np.empty(shape),
            costs=np.empty((*shape, 3)),
            shares=np.empty((*shape, assets)),
            fills=np.empty((*shape, assets, 3)),
        )
        # The starting point, as `ExecutionLog.start` writes it: the first decision bar, no fills, no costs.
        ledger.bars[:, :, 0] = first_bar
        ledger.cash[:, :, 0] = cash
        for array in (ledger.costs, ledger.shares, ledger.fills):
            array[:, :, 0] = 0.0
        return ledger

    @classmethod
    def concat(cls, parts: Sequence[Ledger]) -> Ledger:
        """The ledgers of consecutive chunks of policies as one."""
        return cls(*(np.concatenate([getattr(part, f.name) for part in parts]) for f in fields(cls)))

    def record(
        self,
        row: int,
        t: npt.NDArray[np.int64],
        cash: npt.NDArray[np.float64],
        costs: npt.NDArray[np.float64],
        shares: npt.NDArray[np.float64],
        fills: npt.NDArray[np.float64],
    ) -> None:
        """Copy the kernel's (market, policy, ...) state after a step into row `row`."""
        self.bars[:, :, row] = t.T
        self.cash[:, :, row] = cash.T
        self.costs[:, :, row] = costs.swapaxes(0, 1)
        self.shares[:, :, row] = shares.swapaxes(0, 1)
        self.fills[:, :, row] = fills.swapaxes(0, 1)

    def fill_log(self, p: int, m: int, equity: npt.NDArray[np.float64], market: MarketData) -> FillLog:
        """Account (p, m)'s rows as `ExecutionLog.fill_log` gives them: the same arrays, types and values, sliced
        in one go (filling an `ExecutionLog` row by row cost more than the cell's metrics)."""
        return FillLog(
            stamps=pd.DatetimeIndex(market.timestamps[self.bars[p, m]], name="timestamp"),
            symbols=tuple(market.symbols),
            bars=self.bars[p, m],
            cash=self.cash[p, m],
            equity=equity,
            commission=self.costs[p, m, :, 0],
            slippage=self.costs[p, m, :, 1],
            borrow=self.costs[p, m, :, 2],
            shares=self.shares[p, m],
            fill_qty=self.fills[p, m, :, :, 0],
            fill_price=self.fills[p, m, :, :, 1],
            target=self.fills[p, m, :, :, 2],
        )
