"""Small environments and sources for the agent tests (importable by spawned A3C workers)."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from ml.agents.config import A3CConfig


class TargetEnv(gym.Env[np.ndarray, np.ndarray]):
    """One-step continuous task: observe a target in [-1, 1], reward -(action - target)^2 (optimum 0)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
    action_space = gym.spaces.Box(-2.0, 2.0, shape=(1,), dtype=np.float32)

    def __init__(self) -> None:
        self._target = np.zeros(1, dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._target = self.np_random.uniform(-1.0, 1.0, size=1).astype(np.float32)
        return self._target.copy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        reward = -float(np.square(np.asarray(action, dtype=np.float32) - self._target).sum())
        return self._target.copy(), reward, True, False, {}


CONTINUOUS_A3C_THRESHOLD = -0.5
"""What A3C's continuous-action test requires of TargetEnv (random actions in [-2, 2] score about -1.7)."""


def continuous_a3c_config(seed: int = 0) -> A3CConfig:
    """A3C's continuous-action learning test on TargetEnv with the default optimiser settings (learning rate and
    gradient clip); bench-quality runs it on 20 seeds to check that the defaults do not diverge. Only the budget,
    the evaluation and gamma (a one-step task) are the test's own."""
    return A3CConfig(
        total_timesteps=4_000,
        num_workers=2,
        eval_interval=0,
        eval_episodes=50,
        worker_timeout_s=60,
        gamma=0.0,
        seed=seed,
    )


class ExplodingEnv(gym.Wrapper[Any, Any, Any, Any]):
    """CartPole that raises after ``fail_after`` steps: a worker that dies mid-run."""

    def __init__(self, fail_after: int) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.fail_after = fail_after
        self.steps = 0

    def step(self, action: Any) -> Any:
        self.steps += 1
        if self.steps > self.fail_after:
            raise ValueError("simulated market data outage")
        return self.env.step(action)


@dataclass(frozen=True)
class CallableSource:
    """An EnvSource around a picklable zero-argument env constructor."""

    factory: Any
    label: str = "test-env"

    @property
    def name(self) -> str:
        return self.label

    @property
    def fingerprint(self) -> str | None:
        return None

    def make_env(self) -> gym.Env[Any, Any]:
        env: gym.Env[Any, Any] = self.factory()
        return env

    def make_vec_env(self, num_envs: int) -> Any:
        return SyncVectorEnv([self.factory for _ in range(num_envs)], autoreset_mode=AutoresetMode.SAME_STEP)

    def describe(self) -> dict[str, Any]:
        return {"kind": "test", "name": self.label}


@dataclass(frozen=True)
class ExplodingFactory:
    fail_after: int

    def __call__(self) -> gym.Env[Any, Any]:
        return ExplodingEnv(self.fail_after)


class KilledEnv(gym.Wrapper[Any, Any, Any, Any]):
    """CartPole whose process is killed by SIGKILL after ``kill_after`` steps: no Python error to report."""

    def __init__(self, kill_after: int) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.kill_after = kill_after
        self.steps = 0

    def step(self, action: Any) -> Any:
        self.steps += 1
        if self.steps > self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.env.step(action)


@dataclass(frozen=True)
class KilledFactory:
    kill_after: int

    def __call__(self) -> gym.Env[Any, Any]:
        return KilledEnv(self.kill_after)
