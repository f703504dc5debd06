"""The PPO loss on a hand-computed case, and the action distributions against torch.distributions."""

from __future__ import annotations

import math

import pytest
import torch

from ml.agents.distributions import Categorical, DiagGaussian, MultiCategorical
from ml.agents.networks import Evaluation
from ml.agents.ppo import ppo_loss
from ml.agents.ppo_grad import LossSettings
from ml.agents.storage import Batch


def _batch(old_log_probs: list[float], values: list[float], returns: list[float]) -> Batch:
    n = len(values)
    return Batch(
        obs=torch.zeros(n, 1),
        actions=torch.zeros(n, dtype=torch.long),
        log_probs=torch.tensor(old_log_probs),
        values=torch.tensor(values),
        advantages=torch.zeros(n),
        returns=torch.tensor(returns),
    )


def test_clipped_surrogate_hand_computed() -> None:
    # Ratio 1.5 with a positive advantage is clipped to 1.2; ratio 0.5 with a negative advantage is clipped
    # to 0.8 because the pessimistic minimum of -0.5 and -0.8 is -0.8; ratio 1.0 is inside the range.
    ratios = [1.5, 0.5, 1.0]
    advantages = torch.tensor([2.0, -1.0, 3.0])
    new_log_probs = torch.log(torch.tensor(ratios))
    batch = _batch([0.0, 0.0, 0.0], values=[0.0, 0.0, 0.0], returns=[1.0, 2.0, 0.0])
    evaluation = Evaluation(new_log_probs, entropy=torch.tensor([0.5, 0.5, 0.5]), values=torch.tensor([0.0, 1.0, 1.0]))
    settings = LossSettings(clip_param=0.2, clip_value_loss=False, value_loss_coef=0.5, entropy_coef=0.01)
    loss = ppo_loss(evaluation, batch, advantages, settings)

    surrogate = [min(1.5 * 2, 1.2 * 2), min(0.5 * -1, 0.8 * -1), 1.0 * 3]  # 2.4, -0.8, 3.0
    expected_policy = -sum(surrogate) / 3
    expected_value = 0.5 * ((0 - 1) ** 2 + (1 - 2) ** 2 + (1 - 0) ** 2) / 3
    assert float(loss.policy) == pytest.approx(expected_policy, rel=1e-6)
    assert float(loss.value) == pytest.approx(expected_value, rel=1e-6)
    assert float(loss.entropy) == pytest.approx(0.5)
    assert float(loss.total) == pytest.approx(expected_policy + 0.5 * expected_value - 0.01 * 0.5, rel=1e-6)
    assert float(loss.clip_fraction) == pytest.approx(2 / 3)
    expected_kl = sum((r - 1) - math.log(r) for r in ratios) / 3
    assert float(loss.approx_kl) == pytest.approx(expected_kl, rel=1e-5)


def test_value_clipping_takes_the_pessimistic_error() -> None:
    batch = _batch([0.0], values=[0.0], returns=[1.0])
    evaluation = Evaluation(torch.zeros(1), torch.zeros(1), values=torch.tensor([0.9]))
    unclipped = ppo_loss(evaluation, batch, torch.zeros(1), LossSettings(0.2, False, 1.0, 0.0))
    clipped = ppo_loss(evaluation, batch, torch.zeros(1), LossSettings(0.2, True, 1.0, 0.0))
    assert float(unclipped.value) == pytest.approx(0.5 * 0.1**2)
    assert float(clipped.value) == pytest.approx(0.5 * 0.8**2)  # the clipped value 0.2 is further from 1


def test_categorical_matches_torch() -> None:
    logits = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    ours, ref = Categorical(logits), torch.distributions.Categorical(logits=logits)
    actions = torch.tensor([0, 1, 2, 3, 1, 0])
    torch.testing.assert_close(ours.log_prob(actions), ref.log_prob(actions))
    torch.testing.assert_close(ours.entropy(), ref.entropy())
    assert torch.equal(ours.mode(), logits.argmax(-1))
    draws = Categorical(torch.log(torch.tensor([[0.2, 0.5, 0.3]])).repeat(20_000, 1)).sample(
        torch.Generator().manual_seed(0)
    )
    freqs = torch.bincount(draws, minlength=3).float() / 20_000
    torch.testing.assert_close(freqs, torch.tensor([0.2, 0.5, 0.3]), atol=0.02, rtol=0)


def test_gaussian_matches_torch() -> None:
    mean = torch.randn(5, 3, generator=torch.Generator().manual_seed(2))
    log_std = torch.tensor([-0.5, 0.0, 0.3])
    ours = DiagGaussian(mean, log_std)
    ref = torch.distributions.Normal(mean, log_std.exp())
    actions = torch.randn(5, 3, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(ours.log_prob(actions), ref.log_prob(actions).sum(-1))
    torch.testing.assert_close(ours.entropy(), ref.entropy().sum(-1))
    sample_a = ours.sample(torch.Generator().manual_seed(4))
    sample_b = ours.sample(torch.Generator().manual_seed(4))
    assert torch.equal(sample_a, sample_b)


def test_multi_categorical_sums_independent_parts() -> None:
    logits = torch.randn(4, 5, generator=torch.Generator().manual_seed(5))
    ours = MultiCategorical(logits, (3, 2))
    first, second = (torch.distributions.Categorical(logits=part) for part in (logits[:, :3], logits[:, 3:]))
    actions = torch.tensor([[0, 1], [2, 0], [1, 1], [2, 1]])
    torch.testing.assert_close(ours.log_prob(actions), first.log_prob(actions[:, 0]) + second.log_prob(actions[:, 1]))
    torch.testing.assert_close(ours.entropy(), first.entropy() + second.entropy())
    assert ours.sample(torch.Generator().manual_seed(0)).shape == (4, 2)
