"""The NumPy acting snapshot samples from the network's own distribution and reports its log-probabilities and
values, for every action space and activation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from ml.agents.networks import ActorCritic
from ml.agents.rollout_policy import RolloutPolicy
from ml.agents.spaces import SpaceSpec

OBS_DIM, ROWS = 7, 32
ACTION_SPACES: dict[str, gym.Space[np.ndarray]] = {
    "discrete": gym.spaces.Discrete(4),
    "multi_discrete": gym.spaces.MultiDiscrete([3, 2, 5]),
    "continuous": gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32),
}


def _model(kind: str, activation: str, hidden: tuple[int, ...] = (16, 8)) -> ActorCritic:
    torch.manual_seed(0)
    obs_space = gym.spaces.Box(-np.inf, np.inf, shape=(OBS_DIM,), dtype=np.float32)
    spec = SpaceSpec.from_spaces("acting-test", obs_space, ACTION_SPACES[kind])
    model = ActorCritic(spec, hidden_sizes=hidden, activation=activation, log_std_init=-0.4)  # type: ignore[arg-type]
    for parameter in model.parameters():  # away from the near-uniform initial policy, so sampling is tested
        parameter.data.add_(0.5 * torch.randn_like(parameter))
    return model


@pytest.mark.parametrize("kind", sorted(ACTION_SPACES))
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("hidden", [(16, 8), ()])
def test_log_probs_and_values_equal_the_torch_model(kind: str, activation: str, hidden: tuple[int, ...]) -> None:
    model = _model(kind, activation, hidden)
    acting = RolloutPolicy(model)
    obs = np.random.default_rng(1).normal(size=(ROWS, OBS_DIM)).astype(np.float32)
    draws = acting.draw(torch.Generator().manual_seed(2), 1, ROWS)[0]
    step = acting.step(obs, draws)

    with torch.no_grad():
        expected = model.evaluate(torch.from_numpy(obs), torch.from_numpy(np.asarray(step.actions)))
    assert step.log_probs.dtype == np.float32 and step.values.dtype == np.float32
    np.testing.assert_allclose(step.log_probs, expected.log_probs.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(step.values, expected.values.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(acting.values(obs), expected.values.numpy(), rtol=1e-5, atol=1e-5)
    if kind == "continuous":  # the mean plus the drawn noise scaled by the network's own std
        with torch.no_grad():
            mean = model.distribution(torch.from_numpy(obs)).mode().numpy()
        std = model.log_std.exp().detach().numpy()
        np.testing.assert_allclose(step.actions, mean + std * draws, rtol=1e-5, atol=1e-5)
    else:
        assert step.actions.dtype == np.int64
        nvec = np.asarray(ACTION_SPACES[kind].nvec if kind == "multi_discrete" else [4])
        actions = np.asarray(step.actions).reshape(ROWS, -1)
        assert (actions >= 0).all() and (actions < nvec).all()


@pytest.mark.parametrize("kind", ["discrete", "multi_discrete"])
def test_sampled_frequencies_follow_the_softmax(kind: str) -> None:
    """20,000 draws for one observation: each choice's frequency within 4 standard errors of its probability."""
    model = _model(kind, "tanh")
    acting = RolloutPolicy(model)
    draws_n = 20_000
    obs = np.repeat(np.random.default_rng(3).normal(size=(1, OBS_DIM)).astype(np.float32), draws_n, axis=0)
    step = acting.step(obs, acting.draw(torch.Generator().manual_seed(4), 1, draws_n)[0])
    with torch.no_grad():
        logits = model.distribution(torch.from_numpy(obs[:1]))
    parts = logits.parts if kind == "multi_discrete" else [logits]  # type: ignore[attr-defined]
    actions = np.asarray(step.actions).reshape(draws_n, -1)
    for index, part in enumerate(parts):
        probs = part.log_probs.exp().numpy()[0]
        freq = np.bincount(actions[:, index], minlength=len(probs)) / draws_n
        stderr = np.sqrt(probs * (1 - probs) / draws_n)
        assert (np.abs(freq - probs) <= 4 * stderr + 1e-4).all(), (freq, probs)


def test_draws_come_from_the_generator_so_a_seed_replays_them() -> None:
    acting = RolloutPolicy(_model("discrete", "tanh"))
    first = acting.draw(torch.Generator().manual_seed(5), 3, 4)
    again = acting.draw(torch.Generator().manual_seed(5), 3, 4)
    assert first.shape == (3, 4, 1)
    np.testing.assert_array_equal(first, again)
