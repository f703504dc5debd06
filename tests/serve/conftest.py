"""Real checkpoints (tiny PPO runs, once per session) and real uvicorn servers on loopback in a thread."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ml.agents.checkpoint import save_checkpoint
from ml.agents.config import PPOConfig
from ml.agents.env_sources import EnvSource, gym_source, trading_source
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
        paths[name] = tiny_ppo(gym_source(env), folder / f"{name}.pt")
    return Checkpoints(**paths)


def tiny_ppo(source: EnvSource, path: Path) -> Path:
    """128 steps of PPO: a real checkpoint in about a second (its skill is beside the point)."""
    config = PPOConfig(num_envs=2, rollout_steps=32, batch_size=32, total_timesteps=128, num_epochs=1)
    trainer = PPOTrainer(config, VecEnvAdapter(source.make_vec_env(2), source.name))
    while not trainer.done:
        trainer.iterate()
    return save_checkpoint(trainer.checkpoint(source, include_env=False), path)


@pytest.fixture(scope="module")
def discrete_server(checkpoints: Checkpoints) -> Iterator[RunningServer]:
    with serving(checkpoints.discrete) as server:
        yield server


@pytest.fixture(scope="module")
def continuous_server(checkpoints: Checkpoints) -> Iterator[RunningServer]:
    with serving(checkpoints.continuous) as server:
        yield server


@dataclass(frozen=True)
class Trading:
    multi: Path  # us_indices: SPX and IXIC, discrete levels per asset (multi-discrete)
    continuous: Path  # sp500, continuous target weights


@pytest.fixture(scope="session")
def trading(tmp_path_factory: pytest.TempPathFactory) -> Trading:
    folder = tmp_path_factory.mktemp("trading-checkpoints")
    return Trading(
        # Trading checkpoints carry the observation contract that /v1/act/bars applies.
        multi=tiny_ppo(trading_source("us_indices", "train"), folder / "multi.pt"),
        continuous=tiny_ppo(trading_source("sp500", "train", {"action_mode": "continuous"}), folder / "cont.pt"),
    )


@pytest.fixture(scope="module")
def multi_server(trading: Trading) -> Iterator[RunningServer]:
    with serving(trading.multi) as server:
        yield server
