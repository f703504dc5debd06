"""Picklable recipes for the environments agents train on.

A source builds the batched env for PPO and single envs for A3C workers and evaluation. Sources are frozen
dataclasses so that they cross process boundaries (A3C spawns its workers) and describe themselves as plain
data for ``config.yaml`` and checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from ml.agents.vec_env import VecEnv

GYM_ALIASES = {"cartpole": "CartPole-v1", "pendulum": "Pendulum-v1"}


class EnvSource(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def fingerprint(self) -> str | None:
        """Dataset fingerprint recorded with the run (None for simulated control tasks)."""
        ...

    def make_env(self) -> gym.Env[Any, Any]:
        """One environment (A3C workers, evaluation)."""
        ...

    def make_vec_env(self, num_envs: int) -> VecEnv:
        """``num_envs`` environments stepped together, SAME_STEP autoreset."""
        ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class GymEnvFactory:
    """Picklable zero-argument constructor of a registered gymnasium environment."""

    env_id: str

    def __call__(self) -> gym.Env[Any, Any]:
        return gym.make(self.env_id)


@dataclass(frozen=True)
class GymSource:
    """A registered gymnasium environment (CartPole-v1, Pendulum-v1, ...) for tests and smoke runs."""

    env_id: str

    @property
    def name(self) -> str:
        return self.env_id

    @property
    def fingerprint(self) -> str | None:
        return None

    def make_env(self) -> gym.Env[Any, Any]:
        return GymEnvFactory(self.env_id)()

    def make_vec_env(self, num_envs: int) -> VecEnv:
        env: VecEnv = SyncVectorEnv(
            [GymEnvFactory(self.env_id) for _ in range(num_envs)], autoreset_mode=AutoresetMode.SAME_STEP
        )
        return env

    def describe(self) -> dict[str, Any]:
        return {"kind": "gym", "env_id": self.env_id}


def gym_source(name: str) -> GymSource:
    return GymSource(GYM_ALIASES.get(name.lower(), name))
