"""An observation from raw bars and an account: what the environment would observe at the last bar.

The inference service's bars endpoint calls :func:`observe_bars`; it runs the environment's own pieces in the
environment's order (``compute_features``, the normaliser through ``flat_features``, ``observe_kernel``), so
the two agree bit for bit (a test checks it on several dates and assets).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ml.data.bars import Panel
from ml.data.features import compute_features
from ml.envs.contract import ObservationContract
from ml.envs.execution import observe_kernel
from ml.envs.market import flat_features
from rlops_core.errors import RlopsError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Account:
    """The account at the close of the decision bar: cash, and per asset (in the contract's symbol order) the
    shares held and their average entry price."""

    cash: float
    shares: FloatArray
    entry_price: FloatArray


def equity(account: Account, close: FloatArray) -> float:
    """Cash plus positions at ``close``, summed in the execution kernel's order (so the float is the same)."""
    total = account.cash
    for held, price in zip(account.shares.tolist(), close.tolist(), strict=True):
        total += held * price
    return float(total)


def observe_bars(panel: Panel, contract: ObservationContract, account: Account) -> npt.NDArray[np.float32]:
    """The (obs_dim,) observation at the panel's last bar; ``panel`` holds the contract's symbols in order."""
    if panel.symbols != contract.symbols:
        raise RlopsError(f"bars are for {list(panel.symbols)}, the model trades {list(contract.symbols)}")
    if panel.num_bars < contract.bars_needed:
        raise RlopsError(f"{panel.num_bars} bars per asset; the model needs at least {contract.bars_needed}")
    raw = compute_features(panel, contract.feature_config()).values
    features = flat_features(contract.normalizer(), raw)
    now = panel.num_bars - 1
    out = np.empty((1, contract.obs_dim), dtype=np.float32)
    observe_kernel(
        features,
        contract.window,
        panel.close,
        np.array([now], dtype=np.int64),
        np.array([account.cash], dtype=np.float64),
        np.ascontiguousarray(account.shares, dtype=np.float64).reshape(1, -1),
        np.ascontiguousarray(account.entry_price, dtype=np.float64).reshape(1, -1),
        np.array([equity(account, panel.close[now])], dtype=np.float64),
        np.zeros(1, dtype=np.int64),
        out,
    )
    observation: npt.NDArray[np.float32] = out[0]
    return observation
