"""Bad hyperparameters are rejected with a clear message before any work starts."""

from __future__ import annotations

import pytest

from ml.agents.config import A3CConfig, PPOConfig, config_class, from_mapping
from rlops_core.errors import RlopsError


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"learning_rate": -1e-3}, "learning_rate=-0.001: must be > 0"),
        ({"batch_size": 4096, "num_envs": 8, "rollout_steps": 128}, "larger than the rollout"),
        ({"batch_size": 300}, "must divide the rollout"),
        ({"gamma": 1.5}, "gamma"),
        ({"clip_param": 0.0}, "clip_param"),
        ({"device": "tpu"}, "device"),
        ({"num_epochs": 0}, "num_epochs"),
    ],
)
def test_ppo_config_rejects(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(RlopsError, match=message):
        PPOConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"num_workers": 0}, "num_workers"),
        ({"update_freq": 0}, "update_freq"),
        ({"target_return": 100.0, "eval_interval": 0}, "target_return"),
    ],
)
def test_a3c_config_rejects(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(RlopsError, match=message):
        A3CConfig(**kwargs)  # type: ignore[arg-type]


def test_unknown_algorithm() -> None:
    with pytest.raises(RlopsError, match="unknown algorithm 'dqn': choose one of ppo, a3c"):
        config_class("dqn")


def test_from_mapping_is_strict_and_round_trips() -> None:
    config = PPOConfig(learning_rate=1e-3, hidden_sizes=(32, 32), target_kl=0.02)
    assert from_mapping(PPOConfig, config.to_dict()) == config
    assert from_mapping(PPOConfig, {"learning_rate": 1}).learning_rate == 1.0  # YAML ints are fine for floats
    with pytest.raises(RlopsError, match="unknown PPOConfig key"):
        from_mapping(PPOConfig, {"learning_rte": 1e-3})
    with pytest.raises(RlopsError, match="num_envs='8': must be an integer"):
        from_mapping(PPOConfig, {"num_envs": "8"})


def test_derived_sizes() -> None:
    config = PPOConfig(num_envs=4, rollout_steps=64, batch_size=64, total_timesteps=1000)
    assert config.rollout_size == 256
    assert config.num_minibatches == 4
    assert config.num_iterations == 4  # rounded up to whole rollouts


def test_device_resolution() -> None:
    import torch

    from ml.agents.device import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RlopsError, match="CUDA is not available"):
            resolve_device("cuda")
