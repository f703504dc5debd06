"""Checkpoint format: save -> load gives identical actions; damaged or foreign files get clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ml.agents.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from ml.agents.config import PPOConfig
from ml.agents.env_sources import gym_source
from ml.agents.policy import load_policy
from ml.agents.ppo import PPOTrainer
from ml.agents.presets import target_source
from ml.agents.vec_env import VecEnvAdapter
from rlops_core.errors import RlopsError


def _trained_checkpoint(tmp_path: Path, source=None) -> tuple[PPOTrainer, Path]:  # type: ignore[no-untyped-def]
    source = source or gym_source("cartpole")
    config = PPOConfig(num_envs=2, rollout_steps=32, batch_size=32, total_timesteps=128, num_epochs=2)
    trainer = PPOTrainer(config, VecEnvAdapter(source.make_vec_env(2), source.name))
    while not trainer.done:
        trainer.iterate()
    path = save_checkpoint(trainer.checkpoint(source), tmp_path / "ckpt.pt")
    return trainer, path


@pytest.mark.parametrize("continuous", [False, True])
def test_save_load_gives_identical_actions(tmp_path: Path, continuous: bool) -> None:
    source = target_source() if continuous else gym_source("cartpole")
    trainer, path = _trained_checkpoint(tmp_path, source)
    obs = np.random.default_rng(0).normal(size=(64, trainer.spec.obs_dim)).astype(np.float32)
    before = trainer.policy().act(obs, deterministic=True)
    loaded = load_policy(path)
    after = loaded.act(obs, deterministic=True)
    np.testing.assert_array_equal(before, after)
    assert after.shape == ((64,) if not continuous else (64, 1))
    assert loaded.act(obs[0]).shape == (() if not continuous else (1,))  # one observation, one action
    sampled = [loaded.act(obs, deterministic=False, generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    np.testing.assert_array_equal(sampled[0], sampled[1])
    ckpt = load_checkpoint(path)
    assert ckpt.algo == "ppo"
    assert ckpt.config["num_envs"] == 2
    assert ckpt.obs_norm is not None
    assert ckpt.env_state is not None


def test_corrupt_checkpoint(tmp_path: Path) -> None:
    _, path = _trained_checkpoint(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RlopsError, match="corrupt or not an rlops checkpoint"):
        load_policy(path)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint at all")
    with pytest.raises(RlopsError, match="corrupt or not an rlops checkpoint"):
        load_policy(garbage)
    with pytest.raises(RlopsError, match="does not exist"):
        load_policy(tmp_path / "missing.pt")


def test_other_format_version_and_foreign_file(tmp_path: Path) -> None:
    _, path = _trained_checkpoint(tmp_path)
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, path)
    with pytest.raises(RlopsError, match="format version 99; this rlops reads version 1"):
        load_policy(path)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, foreign)
    with pytest.raises(RlopsError, match="not an rlops agent checkpoint"):
        load_checkpoint(foreign)
    assert payload["format"] == FORMAT


@pytest.mark.parametrize("action_mode", ["discrete", "continuous"])
def test_multi_asset_trading_env_round_trip(tmp_path: Path, action_mode: str) -> None:
    from ml.agents.env_sources import MarketSource
    from ml.envs import EnvConfig
    from tests.builders import random_walk_market

    source = MarketSource(
        random_walk_market(bars=120, assets=2, seed=0), EnvConfig(window=4, action_mode=action_mode), "two", {}
    )
    trainer, path = _trained_checkpoint(tmp_path, source)
    assert trainer.spec.action_kind == ("multi_discrete" if action_mode == "discrete" else "continuous")
    obs = np.random.default_rng(1).normal(size=(16, trainer.spec.obs_dim)).astype(np.float32)
    actions = load_policy(path).act(obs)
    np.testing.assert_array_equal(actions, trainer.policy().act(obs))
    assert actions.shape == (16, 2)
    env = source.make_env()
    env.reset(seed=0)
    env.step(actions[0])  # the env accepts the policy's action as it comes
