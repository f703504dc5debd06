"""Baseline policies every agent must beat, acting through the environment's own action space.

A baseline is built for one simulator (single or batched) and maps a batch of observations to a batch of
actions. Baselines that follow prices (the moving-average crossover) read the simulator's current bar and a
signal computed from closes up to that bar only, so they obey the same no-look-ahead rule as agents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml.envs.simulator import Simulator
from rlops_core.errors import RlopsError

PolicyFn = Callable[[npt.NDArray[np.float32]], npt.NDArray[Any]]
BaselineFactory = Callable[[Simulator, int, dict[str, Any]], PolicyFn]


def _action_for_weights(sim: Simulator, weights: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
    """Actions (N, A) that target `weights` (N, A): the nearest discrete level, or the weight itself."""
    config = sim.config
    if config.action_mode == "discrete":
        levels = np.asarray(config.levels)
        nearest: npt.NDArray[Any] = np.abs(weights[..., None] - levels).argmin(axis=-1).astype(np.int64)
        return nearest
    return weights.astype(np.float32)


def _shape(sim: Simulator, actions: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Single-asset discrete envs take a scalar action per env, everything else a vector per env."""
    if sim.config.action_mode == "discrete" and sim.market.num_assets == 1:
        return actions[:, 0]
    return actions


def _constant(sim: Simulator, weight_per_asset: float) -> PolicyFn:
    weights = np.full((sim.num_envs, sim.market.num_assets), weight_per_asset)
    actions = _shape(sim, _action_for_weights(sim, weights))
    return lambda obs: actions[: len(obs)]


def buy_and_hold(sim: Simulator, seed: int, params: dict[str, Any]) -> PolicyFn:
    """Fully invested, split equally when there are several assets."""
    return _constant(sim, 1.0 / sim.market.num_assets)


def equal_weight(sim: Simulator, seed: int, params: dict[str, Any]) -> PolicyFn:
    """1/A in each asset, rebalanced every bar (for one asset, the same as buy-and-hold)."""
    return _constant(sim, 1.0 / sim.market.num_assets)


def flat(sim: Simulator, seed: int, params: dict[str, Any]) -> PolicyFn:
    return _constant(sim, 0.0)


def random_policy(sim: Simulator, seed: int, params: dict[str, Any]) -> PolicyFn:
    rng = np.random.default_rng(seed)
    assets = sim.market.num_assets
    config = sim.config

    def act(obs: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        if config.action_mode == "discrete":
            return _shape(sim, rng.integers(0, len(config.levels), size=(len(obs), assets)))
        return rng.uniform(config.weight_low, 1.0, size=(len(obs), assets)).astype(np.float32)

    return act


def ma_crossover(sim: Simulator, seed: int, params: dict[str, Any]) -> PolicyFn:
    """Long (or short, when allowed) while the fast moving average of closes is above (below) the slow one."""
    fast, slow = int(params.get("fast", 20)), int(params.get("slow", 100))
    if not 1 <= fast < slow:
        raise RlopsError(f"ma_crossover needs 1 <= fast < slow (got fast={fast}, slow={slow})")
    close = pd.DataFrame(sim.market.close)
    spread = (close.rolling(fast).mean() - close.rolling(slow).mean()).to_numpy()
    short = -1.0 if sim.config.allow_short and params.get("short", False) else 0.0
    per_asset = 1.0 / sim.market.num_assets
    # NaN spread (before `slow` bars of history) means no signal yet: stay flat.
    weights = np.where(spread > 0, per_asset, np.where(spread < 0, short * per_asset, 0.0))
    actions = _action_for_weights(sim, weights)

    def act(obs: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        return _shape(sim, actions[sim.state.t[: len(obs)]])

    return act


# The parameters each baseline reads; any other is refused, so a misspelt one cannot silently fall back to a default.
BASELINE_PARAMS: dict[str, tuple[str, ...]] = {"ma_crossover": ("fast", "slow", "short")}

BASELINES: dict[str, BaselineFactory] = {
    "buy_and_hold": buy_and_hold,
    "flat": flat,
    "random": random_policy,
    "ma_crossover": ma_crossover,
    "equal_weight": equal_weight,
}


def baseline(name: str, sim: Simulator, seed: int = 0, params: dict[str, Any] | None = None) -> PolicyFn:
    if name not in BASELINES:
        raise RlopsError(f"unknown baseline '{name}'; baselines: {', '.join(BASELINES)}")
    check_params(name, params or {})
    return BASELINES[name](sim, seed, dict(params or {}))


def check_params(name: str, params: dict[str, Any]) -> None:
    """Refuse parameters baseline `name` does not read, naming them and the ones it does."""
    takes = BASELINE_PARAMS.get(name, ())
    unknown = sorted(set(params) - set(takes))
    if unknown:
        accepted = f"it takes {', '.join(takes)}" if takes else "it takes none"
        raise RlopsError(f"baseline {name}: unknown parameter(s) {', '.join(unknown)}; {accepted}")
