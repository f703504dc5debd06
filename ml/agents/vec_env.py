"""The batched-environment contract the agents train on, and one adapter that normalizes its step output.

Gymnasium's ``SyncVectorEnv`` (SAME_STEP autoreset), the lean :class:`SameStepSyncVecEnv` that gymnasium
sources use, and the trading package's batched env all satisfy :class:`VecEnv`; they differ in how
``info["final_obs"]`` is stored (an object array of per-env arrays versus one float array), which
:class:`VecEnvAdapter` hides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from ml.agents.spaces import SpaceSpec

FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]


class VecEnv(Protocol):
    """gymnasium's VectorEnv API with SAME_STEP autoreset, as far as the agents use it."""

    num_envs: int
    single_observation_space: gym.Space[Any]
    single_action_space: gym.Space[Any]

    def reset(self, *, seed: int | None = None) -> tuple[Any, dict[str, Any]]: ...

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]: ...

    def close(self) -> None: ...


VecEnvFactory = Callable[[int, int], VecEnv]
"""(num_envs, seed) -> a batched environment; the seed is passed to its first reset."""


class StepResult(NamedTuple):
    """One batched step. ``obs`` already holds reset observations where an episode ended."""

    obs: FloatArray  # (N, D)
    rewards: FloatArray  # (N,)
    terminated: BoolArray  # (N,)
    truncated: BoolArray  # (N,)
    final_obs: FloatArray  # (N, D), valid where ``truncated | terminated``
    episode_returns: list[float]  # episodes that ended at this step, undiscounted
    episode_lengths: list[int]


class VecEnvAdapter:
    """Typed, float32 view of a :class:`VecEnv` that also tracks per-env episode returns.

    The adapter is picklable whenever the wrapped env is, which is how PPO checkpoints carry the exact
    environment state for bit-for-bit resume.
    """

    def __init__(self, env: VecEnv, name: str) -> None:
        self.env = env
        self.num_envs = int(env.num_envs)
        self.spec = SpaceSpec.from_spaces(name, env.single_observation_space, env.single_action_space)
        self._returns = np.zeros(self.num_envs, dtype=np.float64)
        self._lengths = np.zeros(self.num_envs, dtype=np.int64)
        self.obs: FloatArray = np.zeros((self.num_envs, self.spec.obs_dim), dtype=np.float32)
        # The final_obs of a step where no episode ended: all zeros, shared, so read-only.
        self._no_final_obs: FloatArray = np.zeros_like(self.obs)
        self._no_final_obs.flags.writeable = False

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Adapters pickled into checkpoints before the shared zero array existed still resume.
        self.__dict__.update(state)
        if "_no_final_obs" not in state:
            self._no_final_obs = np.zeros_like(self.obs)
        self._no_final_obs.flags.writeable = False

    def reset(self, seed: int) -> FloatArray:
        obs, _ = self.env.reset(seed=seed)
        self.obs = np.asarray(obs, dtype=np.float32).reshape(self.num_envs, self.spec.obs_dim)
        self._returns[:] = 0.0
        self._lengths[:] = 0
        return self.obs

    def step(self, actions: NDArray[Any]) -> StepResult:
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        obs_arr = np.asarray(obs, dtype=np.float32).reshape(self.num_envs, self.spec.obs_dim)
        rew = np.asarray(rewards, dtype=np.float32).reshape(self.num_envs)
        term = np.asarray(terminated, dtype=bool).reshape(self.num_envs)
        trunc = np.asarray(truncated, dtype=bool).reshape(self.num_envs)
        done = term | trunc
        self._returns += rew
        self._lengths += 1
        self.obs = obs_arr
        if not done.any():  # most steps: nothing ended, nothing to gather
            return StepResult(obs_arr, rew, term, trunc, self._no_final_obs, [], [])
        final_obs = self._final_obs(info, done)
        ended = np.flatnonzero(done)
        episode_returns = [float(self._returns[i]) for i in ended]
        episode_lengths = [int(self._lengths[i]) for i in ended]
        self._returns[ended] = 0.0
        self._lengths[ended] = 0
        return StepResult(obs_arr, rew, term, trunc, final_obs, episode_returns, episode_lengths)

    def _final_obs(self, info: dict[str, Any], done: BoolArray) -> FloatArray:
        final = np.zeros((self.num_envs, self.spec.obs_dim), dtype=np.float32)
        if "final_obs" not in info:
            raise RuntimeError("batched env ended an episode without info['final_obs'] (needs SAME_STEP autoreset)")
        raw = info["final_obs"]
        mask = np.asarray(info.get("_final_obs", done), dtype=bool)
        if isinstance(raw, np.ndarray) and raw.dtype != object:
            final[mask] = raw[mask]
        else:  # gymnasium: an object array holding one array per env, None elsewhere
            for i in np.flatnonzero(mask):
                final[i] = np.asarray(raw[i], dtype=np.float32)
        return final

    def close(self) -> None:
        self.env.close()
