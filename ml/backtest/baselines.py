"""Baseline policies every agent must beat, expressed as actions in the environment's own action space."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.backtest.metrics import Headline, headline
from ml.envs.trading_env import TradingEnv
from rlops.errors import RlopsError

Policy = Callable[[np.ndarray], Any]


def _constant_weight(env: TradingEnv, weight: float) -> Any:
    config = env.config
    if config.action_mode == "discrete":
        levels = np.asarray(config.levels)
        index = int(np.argmin(np.abs(levels - weight)))
        return index if env.market.num_assets == 1 else np.full(env.market.num_assets, index)
    return np.full(env.market.num_assets, weight / env.market.num_assets, dtype=np.float32)


def buy_and_hold(env: TradingEnv, seed: int = 0) -> Policy:
    action = _constant_weight(env, 1.0)
    return lambda _obs: action


def flat(env: TradingEnv, seed: int = 0) -> Policy:
    action = _constant_weight(env, 0.0)
    return lambda _obs: action


def random_policy(env: TradingEnv, seed: int = 0) -> Policy:
    env.action_space.seed(seed)
    return lambda _obs: env.action_space.sample()


BASELINES: dict[str, Callable[[TradingEnv, int], Policy]] = {
    "buy_and_hold": buy_and_hold,
    "flat": flat,
    "random": random_policy,
}


@dataclass(frozen=True)
class EpisodeResult:
    name: str
    log: pd.DataFrame
    headline: Headline
    costs: float


def run_episode(env: TradingEnv, policy: Policy, name: str, seed: int = 0) -> EpisodeResult:
    """One full episode of `policy`, recorded step by step by the environment itself."""
    if env.log is None:
        raise RlopsError("run_episode needs an environment built with record=True")
    obs, _ = env.reset(seed=seed)
    done = False
    while not done:
        obs, _, terminated, truncated, _ = env.step(policy(obs))
        done = terminated or truncated
    log = env.log.to_frame()
    equity = log["equity"].to_numpy()
    costs = float(log[["commission", "slippage", "borrow"]].to_numpy().sum())
    return EpisodeResult(name, log, headline(equity, env.market.periods_per_year), costs)


def run_baseline(name: str, env: TradingEnv, seed: int = 0) -> EpisodeResult:
    if name not in BASELINES:
        raise RlopsError(f"unknown baseline '{name}'; baselines: {', '.join(BASELINES)}")
    return run_episode(env, BASELINES[name](env, seed), name, seed)
