"""A3C: real parallel workers, failures that end the run instead of hanging it, and learning CartPole."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch.multiprocessing as mp

from ml.agents.a3c import A3CWorkerError, train_a3c
from ml.agents.checkpoint import load_checkpoint
from ml.agents.config import A3CConfig
from ml.agents.env_sources import FactorySource, gym_source
from ml.agents.policy import load_policy
from ml.agents.presets import TARGET_A3C_THRESHOLD, TargetEnv, target_a3c, target_source

from .helpers import ExplodingFactory, KilledFactory

SMALL = A3CConfig(total_timesteps=3_000, num_workers=2, eval_interval=0, eval_episodes=1, worker_timeout_s=60)


def test_two_worker_processes_update_the_shared_model_and_resume(tmp_path: Path) -> None:
    result = train_a3c(SMALL, gym_source("cartpole"), tmp_path)
    assert len(result.worker_updates) == 2
    assert os.getpid() not in result.worker_updates
    assert all(count > 0 for count in result.worker_updates.values())
    assert result.global_step >= SMALL.total_timesteps
    assert mp.active_children() == []
    ckpt = load_checkpoint(tmp_path / "checkpoints" / "final.pt")
    assert ckpt.algo == "a3c"
    assert ckpt.global_step == result.global_step
    policy = load_policy(tmp_path / "checkpoints" / "final.pt")
    assert policy.act(np.zeros((3, 4), dtype=np.float32)).shape == (3,)

    resumed = train_a3c(replace(SMALL, total_timesteps=5_000), gym_source("cartpole"), resume=ckpt)
    assert resumed.global_step >= 5_000
    assert resumed.steps_trained == resumed.global_step - result.global_step
    assert resumed.steps_trained < 5_000


def test_a_worker_that_raises_fails_the_run_with_its_error() -> None:
    start = time.monotonic()
    with pytest.raises(A3CWorkerError, match="ValueError: simulated market data outage") as info:
        train_a3c(SMALL, FactorySource(ExplodingFactory(fail_after=200)))
    assert "Traceback" in info.value.details
    assert time.monotonic() - start < 60
    assert mp.active_children() == []


def test_a_worker_that_cannot_start_fails_the_run_with_that_error() -> None:
    """A source the spawn start method cannot pickle (a local function) stops the run with the pickling error
    itself, not with a clean-up error about joining a process that never started."""

    def local_factory() -> TargetEnv:
        return TargetEnv()

    with pytest.raises(Exception, match="pickle") as raised:
        train_a3c(SMALL, FactorySource(local_factory, "local"))
    assert "started process" not in str(raised.value)
    assert mp.active_children() == []


def test_a_killed_worker_fails_the_run() -> None:
    start = time.monotonic()
    with pytest.raises(A3CWorkerError, match="died with exit code -9"):
        train_a3c(SMALL, FactorySource(KilledFactory(kill_after=200)))
    assert time.monotonic() - start < 60
    assert mp.active_children() == []


@pytest.mark.slow
def test_a3c_learns_cartpole() -> None:
    config = A3CConfig(
        total_timesteps=300_000,
        num_workers=2,
        learning_rate=1e-3,
        update_freq=20,
        eval_interval=5_000,
        eval_episodes=10,
        target_return=475.0,
        seed=0,
    )
    result = train_a3c(config, gym_source("cartpole"))
    assert result.evaluation is not None
    print(
        f"A3C CartPole-v1: eval {result.evaluation.mean_return:.1f}, training mean {result.mean_return:.1f}, "
        f"target first met at step {result.first_step_at_target}, {result.steps_per_s:.0f} steps/s"
    )
    assert result.first_step_at_target is not None
    assert result.evaluation.mean_return >= 475


def test_a3c_continuous_actions() -> None:
    # The default gradient clip: bench-quality runs this configuration on 20 seeds (docs/agents.md).
    result = train_a3c(target_a3c(), target_source())
    assert result.evaluation is not None
    assert result.evaluation.mean_return > TARGET_A3C_THRESHOLD
