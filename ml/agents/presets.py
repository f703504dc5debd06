"""Known-good hyperparameters, shared by the learning tests and the benchmarks so they measure the same thing."""

from __future__ import annotations

from ml.agents.config import PPOConfig


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
