"""A synthetic price series whose optimal trading policy is known, for the agents' learning tests.

Prices move +-1% a bar in regimes of 5 to 15 bars; the one feature at bar t is the direction of bar t+1.
With decisions at the close of t and fills at the open of t+1 (= close of t here, so no overnight gap), the
position held through bar t+1 earns exactly that bar's move. Being fully long before up bars and fully short
before down bars is therefore optimal: a flip costs (commission + slippage) on twice the equity, about
0.14%, far less than the 1% a bar it captures, and the leverage cap of 1 rules out anything larger.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ml.agents.env_sources import MarketSource
from ml.envs import EnvConfig, MarketData, TradingEnv

MOVE = 0.01
ENV_CONFIG = EnvConfig(window=1, commission_bps=5.0, slippage_bps=2.0, impact_coef=0.0, participation_cap=0.0)


def synthetic_market(bars: int = 300, seed: int = 0) -> MarketData:
    rng = np.random.default_rng(seed)
    signs: list[float] = []
    direction = 1.0
    while len(signs) < bars + 1:
        signs += [direction] * int(rng.integers(5, 16))
        direction = -direction
    moves = np.asarray(signs[: bars + 1]) * MOVE
    close = 100.0 * np.cumprod(1.0 + moves[:bars])
    open_ = np.concatenate([[100.0], close[:-1]])
    next_direction = np.sign(moves[1 : bars + 1])
    return MarketData(
        timestamps=pd.date_range("2020-01-01", periods=bars, freq="D", tz="UTC"),
        symbols=("SYN",),
        open=open_[:, None],
        close=close[:, None],
        volume=np.full((bars, 1), 1e12),
        features=next_direction[:, None].astype(np.float64),
        feature_names=("next_direction",),
        first_decision=0,
        last_bar=bars - 1,
        periods_per_year=252.0,
        fingerprint=f"sha256:synthetic-{bars}-{seed}",
    )


def synthetic_source(bars: int = 300, seed: int = 0) -> MarketSource:
    return MarketSource(synthetic_market(bars, seed), ENV_CONFIG, "synthetic", {"kind": "synthetic"})


def oracle_return(market: MarketData) -> float:
    """Return of the known optimal policy over one full episode, costs included (the env's own accounting)."""
    env = TradingEnv(market, ENV_CONFIG, record=False)
    obs, _ = env.reset(seed=0)
    total, done = 0.0, False
    levels = list(ENV_CONFIG.levels)
    while not done:
        action: Any = levels.index(1.0) if obs[0] > 0 else levels.index(-1.0)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        done = terminated or truncated
    return total
