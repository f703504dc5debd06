"""A sweep ledger's account frame is exactly the frame `ExecutionLog.to_frame` builds from the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.backtest.sweep_ledger import Ledger
from ml.envs import EnvConfig, EnvSpec
from ml.envs.execution_log import ExecutionLog


def test_frame_is_the_execution_logs_frame() -> None:
    market = EnvSpec(dataset="nasdaq", period="validation", env=EnvConfig(window=8)).market()
    rng = np.random.default_rng(0)
    rows, assets = 40, market.num_assets
    ledger = Ledger.empty(2, 3, rows, assets, market.first_decision, 1e5)
    ledger.bars[:] = market.first_decision + np.arange(rows)
    for array in (ledger.cash, ledger.costs, ledger.shares, ledger.fills):
        array[:, :, 1:] = rng.normal(size=array[:, :, 1:].shape)
    equity = rng.normal(1e5, 1e3, rows)
    log = ExecutionLog(market)
    log.bars = ledger.bars[1, 2].tolist()
    log.cash, log.equity = ledger.cash[1, 2].tolist(), equity.tolist()
    log.commission, log.slippage, log.borrow = (ledger.costs[1, 2, :, k].tolist() for k in range(3))
    log.shares = list(ledger.shares[1, 2])
    log.fill_qty, log.fill_price, log.target = (list(ledger.fills[1, 2, :, :, k]) for k in range(3))
    pd.testing.assert_frame_equal(ledger.fill_log(1, 2, equity, market).to_frame(), log.to_frame(), check_exact=True)
