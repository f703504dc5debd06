"""Known-good hyperparameters (and the one-step task the continuous-action A3C preset is judged on), shared
by the learning tests and the benchmarks so they measure the same thing."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from ml.agents.config import A3CConfig, PPOConfig
from ml.agents.env_sources import FactorySource


def cartpole_ppo(total_timesteps: int = 100_000) -> PPOConfig:
    """The rl-baselines3-zoo CartPole-v1 PPO settings (what the benchmark gives both implementations)."""
    return PPOConfig(
        total_timesteps=total_timesteps,
        num_envs=8,
        rollout_steps=32,
        batch_size=256,
        num_epochs=20,
        learning_rate=1e-3,
        lr_schedule="linear",
        gamma=0.98,
        gae_lambda=0.8,
        entropy_coef=0.0,
        normalize_obs=False,
        seed=0,
    )


def trading_ppo(total_timesteps: int = 100_000) -> PPOConfig:
    """The trading environment's benchmark settings (bench-agents and bench-quality give both implementations)."""
    return PPOConfig(
        total_timesteps=total_timesteps,
        num_envs=8,
        rollout_steps=128,
        batch_size=256,
        num_epochs=4,
        learning_rate=3e-4,
        gamma=0.99,
        gae_lambda=0.95,
        normalize_obs=False,
        seed=0,
    )


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


def target_source() -> FactorySource:
    """TargetEnv as an EnvSource (spawned A3C workers can unpickle it: TargetEnv is a module-level class)."""
    return FactorySource(TargetEnv, "target")


TARGET_A3C_THRESHOLD = -0.5
"""What A3C must score on TargetEnv with ``target_a3c`` (random actions in [-2, 2] score about -1.7)."""


def target_a3c(seed: int = 0) -> A3CConfig:
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
