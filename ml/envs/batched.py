"""N trading environments stepped together in one compiled call, with Gymnasium's vector-env interface.

Semantics equal `TradingEnv` exactly (same kernel). Auto-reset is same-step: when an env ends, the returned
observation is already the next episode's first, and the last one is in `info["final_obs"]` (rows where
`info["_final_obs"]` is True), which is what bootstrapping on truncation needs.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from gymnasium.vector import AutoresetMode, VectorEnv

from ml.envs.config import EnvConfig
from ml.envs.execution_log import ExecutionLog
from ml.envs.market import MarketData
from ml.envs.simulator import ObsArray, Simulator, action_space, observation_space


class BatchedTradingEnv(VectorEnv[ObsArray, Any, Any]):
    # Gymnasium declares metadata as an instance attribute, so a ClassVar annotation would clash with it.
    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP}  # noqa: RUF012

    def __init__(self, market: MarketData, config: EnvConfig | None = None, num_envs: int = 1, record: bool = False):
        self.config = config or EnvConfig()
        self.market = market
        self.sim = Simulator(market, self.config, num_envs)
        self.num_envs = num_envs
        self.single_action_space = action_space(market, self.config)
        self.single_observation_space = observation_space(market, self.config)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.logs = [ExecutionLog(market) for _ in range(num_envs)] if record else None
        self.completed_logs: list[list[ExecutionLog]] = [[] for _ in range(num_envs)]
        self._rngs = [np.random.default_rng() for _ in range(num_envs)]
        self._all = np.arange(num_envs, dtype=np.int64)

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsArray, dict[str, Any]]:
        """`seed=s` seeds env i with s + i, so env i replays a `TradingEnv` reset with that seed."""
        seeds = (
            [None if seed is None else seed + i for i in range(self.num_envs)] if not isinstance(seed, list) else seed
        )
        if len(seeds) != self.num_envs:
            raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} envs")
        for i, value in enumerate(seeds):
            if value is not None or seed is None:
                self._rngs[i] = np.random.default_rng(value)
        self.sim.reset_rows(self._all, self._rngs)
        if self.logs is not None:
            for i, log in enumerate(self.logs):
                log.start(self.sim.state, i)
        return self.sim.observe(np.empty((self.num_envs, self.sim.obs_size), dtype=np.float32)), {}

    def step(
        self, actions: Any
    ) -> tuple[ObsArray, npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_], dict[str, Any]]:
        sim = self.sim
        sim.step(sim.to_weights_input(actions))
        if self.logs is not None:
            for i, log in enumerate(self.logs):
                log.append(sim.state, sim.record, i)
        obs = sim.observe(np.empty((self.num_envs, sim.obs_size), dtype=np.float32))
        done = sim.terminated | sim.truncated
        info: dict[str, Any] = {}
        if done.any():
            rows = np.flatnonzero(done).astype(np.int64)
            info["final_obs"] = obs.copy()
            info["_final_obs"] = done.copy()
            info["final_equity"] = sim.state.equity.copy()
            sim.reset_rows(rows, self._rngs)
            sim.observe(obs, rows)
            if self.logs is not None:
                for i in map(int, rows):
                    self.completed_logs[i].append(self.logs[i])
                    self.logs[i] = ExecutionLog(self.market)
                    self.logs[i].start(sim.state, i)
        return obs, sim.rewards.copy(), sim.terminated.copy(), sim.truncated.copy(), info
