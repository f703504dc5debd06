"""N accounts trading one market in lockstep: the state, action checks and observations both envs share."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from ml.envs.config import EnvConfig
from ml.envs.execution import OBS_CLIP, AccountState, StepRecord, observe_kernel, pack_params, step_kernel
from ml.envs.market import MarketData, check_fits, draw_episode, observation_size
from rlops_core.errors import RlopsError

ObsArray = npt.NDArray[np.float32]


def action_space(market: MarketData, config: EnvConfig) -> gym.Space[Any]:
    if config.action_mode == "discrete":
        if market.num_assets == 1:
            return gym.spaces.Discrete(len(config.levels))
        return gym.spaces.MultiDiscrete([len(config.levels)] * market.num_assets)
    return gym.spaces.Box(config.weight_low, 1.0, shape=(market.num_assets,), dtype=np.float32)


def observation_space(market: MarketData, config: EnvConfig) -> gym.spaces.Box:
    return gym.spaces.Box(-OBS_CLIP, OBS_CLIP, shape=(observation_size(market, config),), dtype=np.float32)


def _not_a_level(actions: Any, levels: int) -> RlopsError:
    return RlopsError(f"discrete actions must be integers in [0, {levels - 1}] (got {actions!r})")


class Simulator:
    """The shared machinery of `TradingEnv` (N = 1) and `BatchedTradingEnv` (N envs)."""

    def __init__(self, market: MarketData, config: EnvConfig, num_envs: int) -> None:
        if num_envs < 1:
            raise RlopsError(f"num_envs must be >= 1 (got {num_envs})")
        check_fits(market, config)
        self.market = market
        self.config = config
        self.num_envs = num_envs
        self.obs_size = observation_size(market, config)
        self.params = pack_params(config, market.periods_per_year)
        self.levels = np.asarray(config.levels, dtype=np.float64)
        self.state = AccountState.empty(num_envs, market.num_assets)
        self.record = StepRecord.empty(num_envs, market.num_assets)
        self.rewards = np.zeros(num_envs)
        self.terminated = np.zeros(num_envs, dtype=np.bool_)
        self.truncated = np.zeros(num_envs, dtype=np.bool_)
        self._all_rows = np.arange(num_envs, dtype=np.int64)
        self._one_choice = num_envs == 1 and market.num_assets == 1 and config.action_mode == "discrete"
        self._one_action = np.zeros((1, 1))

    def reset_rows(self, rows: npt.NDArray[np.int64], rngs: list[np.random.Generator]) -> None:
        state = self.state
        for i in rows:
            start, end = draw_episode(self.market, self.config, rngs[i])
            state.t[i], state.end[i] = start, end
            state.cash[i] = self.config.initial_cash
            state.equity[i] = self.config.initial_cash
            state.shares[i] = 0.0
            state.basis[i] = 0.0
            state.dsr_a[i] = 0.0
            state.dsr_b[i] = 0.0
            self.record.fill_qty[i] = 0.0
            self.record.commission[i] = 0.0
            self.record.slippage[i] = 0.0
            self.record.borrow[i] = 0.0

    def to_weights_input(self, actions: Any) -> npt.NDArray[np.float64]:
        """Actions as (N, A) float64, rejected loudly when out of range or not finite."""
        levels = len(self.config.levels)
        if self._one_choice and isinstance(actions, int | np.integer):
            # The common single-env case, kept free of array work because it runs once per step.
            if not 0 <= actions < levels:
                raise _not_a_level(actions, levels)
            self._one_action[0, 0] = actions
            return self._one_action
        raw = np.asarray(actions)
        batch = raw.astype(np.float64).reshape(self.num_envs, self.market.num_assets)
        if self.config.action_mode == "discrete":
            # Integer arrays (what agents send) need only the range check.
            whole = raw.dtype.kind in "iu" or np.array_equal(batch, np.floor(batch))
            if not whole or batch.min() < 0 or batch.max() >= levels:
                raise _not_a_level(actions, levels)
        elif not np.isfinite(batch).all():
            raise RlopsError(f"continuous actions must be finite target weights (got {actions!r})")
        return batch

    def step(self, weights_input: npt.NDArray[np.float64]) -> None:
        s, r, m = self.state, self.record, self.market
        step_kernel(
            weights_input, self.levels, self.params, m.open, m.close, m.volume,
            s.t, s.end, s.cash, s.shares, s.basis, s.equity, s.dsr_a, s.dsr_b,
            self.rewards, self.terminated, self.truncated,
            r.fill_qty, r.fill_price, r.commission, r.slippage, r.borrow, r.target,
        )  # fmt: skip

    def observe(self, out: ObsArray, rows: npt.NDArray[np.int64] | None = None) -> ObsArray:
        s, m = self.state, self.market
        observe_kernel(
            m.features, self.config.window, m.close, s.t, s.cash, s.shares, s.basis, s.equity,
            self._all_rows if rows is None else rows, out,
        )  # fmt: skip
        return out
