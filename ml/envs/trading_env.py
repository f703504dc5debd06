"""The single Gymnasium trading environment (one account, one or more assets)."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from ml.envs.config import EnvConfig
from ml.envs.execution_log import ExecutionLog
from ml.envs.market import MarketData
from ml.envs.simulator import ObsArray, Simulator, action_space, observation_space


class TradingEnv(gym.Env[ObsArray, Any]):
    """Decide at the close of bar t, fill at the open of t+1, earn the change in log equity net of all costs.

    End of data is truncation (the market goes on, the data does not); ruin (equity <= 0) is termination.
    With `record=True` every step's fills, costs, positions and equity go to `self.log`.
    """

    # Gymnasium declares metadata as an instance attribute, so a ClassVar annotation would clash with it.
    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(self, market: MarketData, config: EnvConfig | None = None, record: bool = True) -> None:
        self.config = config or EnvConfig()
        self.market = market
        self.sim = Simulator(market, self.config, num_envs=1)
        self.action_space = action_space(market, self.config)
        self.observation_space = observation_space(market, self.config)  # type: ignore[assignment]
        self.log: ExecutionLog | None = ExecutionLog(market) if record else None
        self._zero_row = np.zeros(1, dtype=np.int64)
        self._started = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsArray, dict[str, Any]]:
        super().reset(seed=seed)
        self.sim.reset_rows(self._zero_row, [self.np_random])
        if self.log is not None:
            self.log.start(self.sim.state, 0)
        self._started = True
        return self._observe(), self._info()

    def step(self, action: Any) -> tuple[ObsArray, SupportsFloat, bool, bool, dict[str, Any]]:
        if not self._started:
            raise gym.error.ResetNeeded("call reset() before step()")
        sim = self.sim
        sim.step(sim.to_weights_input(action))
        if self.log is not None:
            self.log.append(sim.state, sim.record, 0)
        terminated, truncated = bool(sim.terminated[0]), bool(sim.truncated[0])
        self._started = not (terminated or truncated)
        return self._observe(), float(sim.rewards[0]), terminated, truncated, self._info()

    def _observe(self) -> ObsArray:
        out = np.empty((1, self.sim.obs_size), dtype=np.float32)
        obs: ObsArray = self.sim.observe(out, self._zero_row)[0]
        return obs

    def _info(self) -> dict[str, Any]:
        state, record = self.sim.state, self.sim.record
        return {
            "bar": int(state.t[0]),
            "equity": float(state.equity[0]),
            "commission": float(record.commission[0]),
            "slippage": float(record.slippage[0]),
            "borrow": float(record.borrow[0]),
        }
