"""PPO: bit-for-bit reproducibility, exact resume, and learning on CartPole and a continuous task."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ml.agents.checkpoint import load_checkpoint
from ml.agents.config import PPOConfig
from ml.agents.env_sources import gym_source
from ml.agents.ppo import train_ppo
from ml.agents.presets import cartpole_ppo, target_source

CARTPOLE = cartpole_ppo()
SMALL = PPOConfig(total_timesteps=1024, num_envs=4, rollout_steps=32, batch_size=64, num_epochs=3, eval_episodes=0)


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        del row["steps_per_s"]  # wall-clock, the only column allowed to differ
    return rows


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).model_state


def test_same_seed_gives_identical_training_curve(tmp_path: Path) -> None:
    source = gym_source("cartpole")
    train_ppo(SMALL, source, tmp_path / "a")
    train_ppo(SMALL, source, tmp_path / "b")
    train_ppo(replace(SMALL, seed=1), source, tmp_path / "c")
    assert _rows(tmp_path / "a") == _rows(tmp_path / "b")
    assert len(_rows(tmp_path / "a")) == SMALL.num_iterations
    assert _rows(tmp_path / "a") != _rows(tmp_path / "c")
    final_a, final_b = (_weights(tmp_path / run / "checkpoints" / "final.pt") for run in "ab")
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)


@pytest.mark.parametrize("continuous", [False, True])
def test_resume_matches_uninterrupted_run(tmp_path: Path, continuous: bool) -> None:
    source = target_source() if continuous else gym_source("cartpole")
    config = replace(SMALL, checkpoint_interval=512)
    train_ppo(config, source, tmp_path / "full")
    midway = load_checkpoint(tmp_path / "full" / "checkpoints" / "step_512.pt")
    assert midway.global_step == 512
    train_ppo(config, source, tmp_path / "resumed", resume=midway)

    full, resumed = _rows(tmp_path / "full"), _rows(tmp_path / "resumed")
    assert resumed == full[-len(resumed) :]
    assert len(resumed) == len(full) // 2
    final_full = _weights(tmp_path / "full" / "checkpoints" / "final.pt")
    final_resumed = _weights(tmp_path / "resumed" / "checkpoints" / "final.pt")
    assert all(torch.equal(final_full[k], final_resumed[k]) for k in final_full)


def test_run_directory_contents(tmp_path: Path) -> None:
    train_ppo(SMALL, gym_source("cartpole"), tmp_path)
    assert (tmp_path / "metrics.csv").is_file()
    assert list(tmp_path.glob("events.out.tfevents.*"))
    assert (tmp_path / "checkpoints" / "final.pt").is_file()


def test_target_kl_stops_updates_early() -> None:
    config = replace(SMALL, target_kl=1e-9, learning_rate=1e-2)
    result = train_ppo(config, gym_source("cartpole"))
    assert result.global_step == SMALL.total_timesteps


@pytest.mark.slow
def test_ppo_learns_cartpole_within_100k_steps(tmp_path: Path) -> None:
    result = train_ppo(CARTPOLE, gym_source("cartpole"), tmp_path)
    reached = [int(row["global_step"]) for row in _rows(tmp_path) if float(row["mean_return"]) >= 475]
    assert result.global_step <= 100_352  # 100k rounded up to whole rollouts of 256
    assert result.evaluation is not None
    print(
        f"PPO CartPole-v1: eval {result.evaluation.mean_return:.1f}, training mean {result.mean_return:.1f}, "
        f"training mean first >= 475 at step {reached[0] if reached else None}, {result.steps_per_s:.0f} steps/s"
    )
    assert result.evaluation.mean_return >= 475


@pytest.mark.slow
def test_ppo_learns_continuous_target() -> None:
    config = PPOConfig(
        total_timesteps=16_384,
        num_envs=8,
        rollout_steps=64,
        batch_size=128,
        num_epochs=10,
        learning_rate=3e-3,
        gamma=0.0,
        gae_lambda=0.0,
        eval_episodes=50,
        seed=0,
    )
    result = train_ppo(config, target_source())
    assert result.evaluation is not None
    # A random policy scores about -1.7 per step; the optimum is 0.
    assert result.evaluation.mean_return > -0.01


def test_pendulum_time_limits_bootstrap_from_the_final_observation() -> None:
    # Pendulum-v1 never terminates and truncates at 200 steps: every episode end goes through final_obs.
    result = train_ppo(replace(SMALL, eval_episodes=1), gym_source("pendulum"))
    assert result.episodes == SMALL.num_envs * (SMALL.total_timesteps // SMALL.num_envs // 200)
    assert result.evaluation is not None
    assert -2000 < result.evaluation.mean_return < 0
