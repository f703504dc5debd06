"""Real checkpoints (tiny PPO runs, once per session) and real uvicorn servers on loopback in a thread."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ml.agents.checkpoint import save_checkpoint
from ml.agents.config import PPOConfig
from ml.agents.env_sources import gym_source
from ml.agents.ppo import PPOTrainer
from ml.agents.vec_env import VecEnvAdapter

from .serve_helpers import RunningServer, serving


@dataclass(frozen=True)
class Checkpoints:
    discrete: Path  # CartPole: 4 features, 2 actions
    continuous: Path  # Pendulum: 3 features, 1 action in [-2, 2]


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Checkpoints:
    folder = tmp_path_factory.mktemp("serve-checkpoints")
    paths = {}
    for name, env in (("discrete", "cartpole"), ("continuous", "pendulum")):
        source = gym_source(env)
        config = PPOConfig(num_envs=2, rollout_steps=32, batch_size=32, total_timesteps=128, num_epochs=1)
        trainer = PPOTrainer(config, VecEnvAdapter(source.make_vec_env(2), source.name))
        while not trainer.done:
            trainer.iterate()
        paths[name] = save_checkpoint(trainer.checkpoint(source), folder / f"{name}.pt")
    return Checkpoints(**paths)


@pytest.fixture(scope="module")
def discrete_server(checkpoints: Checkpoints) -> Iterator[RunningServer]:
    with serving(checkpoints.discrete) as server:
        yield server


@pytest.fixture(scope="module")
def continuous_server(checkpoints: Checkpoints) -> Iterator[RunningServer]:
    with serving(checkpoints.continuous) as server:
        yield server
