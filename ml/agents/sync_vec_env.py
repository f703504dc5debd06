"""Gymnasium environments stepped one after another in this process, as one batched env (SAME_STEP autoreset).

What gymnasium's ``SyncVectorEnv(autoreset_mode=SAME_STEP)`` returns for the fields the agents read, at under
half its cost per step: it batches every ``info`` dict key by key and iterates actions through the space's
generic machinery, which for CartPole-sized envs costs more than the envs themselves. Here ``info`` holds only
``final_obs`` / ``_final_obs``, as one float array. Tests compare both step by step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from numpy.typing import NDArray


class SameStepSyncVecEnv:
    """``len(env_fns)`` environments; ``reset(seed=s)`` seeds env i with ``s + i`` as gymnasium does."""

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP}  # noqa: RUF012

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env[Any, Any]]]) -> None:
        self.envs = [make() for make in env_fns]
        self.num_envs = len(self.envs)
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        shape = self.single_observation_space.shape or ()
        self._obs_shape = (self.num_envs, *shape)
        self._obs_dtype = self.single_observation_space.dtype or np.float32

    def reset(self, *, seed: int | None = None) -> tuple[NDArray[Any], dict[str, Any]]:
        obs = np.empty(self._obs_shape, dtype=self._obs_dtype)
        for index, env in enumerate(self.envs):
            obs[index] = env.reset(seed=None if seed is None else seed + index)[0]
        return obs, {}

    def step(self, actions: Any) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any], dict[str, Any]]:
        obs = np.empty(self._obs_shape, dtype=self._obs_dtype)
        rewards = np.empty(self.num_envs, dtype=np.float64)
        terminated = np.empty(self.num_envs, dtype=np.bool_)
        truncated = np.empty(self.num_envs, dtype=np.bool_)
        final_obs: NDArray[Any] | None = None
        ended = np.zeros(self.num_envs, dtype=np.bool_)
        for index, env in enumerate(self.envs):
            observation, reward, term, trunc, _ = env.step(actions[index])
            if term or trunc:
                if final_obs is None:
                    final_obs = np.zeros(self._obs_shape, dtype=self._obs_dtype)
                final_obs[index] = observation
                ended[index] = True
                observation, _ = env.reset()
            obs[index] = observation
            rewards[index] = reward
            terminated[index] = term
            truncated[index] = trunc
        info: dict[str, Any] = {} if final_obs is None else {"final_obs": final_obs, "_final_obs": ended}
        return obs, rewards, terminated, truncated, info

    def close(self) -> None:
        for env in self.envs:
            env.close()
