"""The closed-form PPO gradient equals autograd's on the same loss, for every action space and option."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from ml.agents.networks import ActorCritic
from ml.agents.ppo import ppo_loss
from ml.agents.ppo_grad import LossSettings, clip_grad_norm, fused_adam_step, ppo_loss_and_grads
from ml.agents.spaces import SpaceSpec
from ml.agents.storage import Batch

OBS_DIM, ROWS = 6, 64
ACTION_SPACES: dict[str, gym.Space[np.ndarray]] = {
    "discrete": gym.spaces.Discrete(3),
    "multi_discrete": gym.spaces.MultiDiscrete([3, 2]),
    "continuous": gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32),
}


def _case(kind: str, activation: str) -> tuple[ActorCritic, Batch, torch.Tensor]:
    torch.manual_seed(0)
    obs_space = gym.spaces.Box(-np.inf, np.inf, shape=(OBS_DIM,), dtype=np.float32)
    spec = SpaceSpec.from_spaces("grad-test", obs_space, ACTION_SPACES[kind])
    model = ActorCritic(spec, hidden_sizes=(16, 8), activation=activation, log_std_init=-0.3)  # type: ignore[arg-type]
    for parameter in model.parameters():  # away from the tiny-gain initialisation, so every term matters
        parameter.data.add_(0.3 * torch.randn_like(parameter))
    obs = torch.randn(ROWS, OBS_DIM)
    with torch.no_grad():
        step = model.step(obs, torch.Generator().manual_seed(1))
    # Old log-probs spread around the new ones: ratios fall inside, above and below the clip range.
    old_log_probs = step.log_probs + 0.4 * torch.randn(ROWS)
    batch = Batch(
        obs=obs,
        actions=step.actions,
        log_probs=old_log_probs,
        values=step.values + 0.3 * torch.randn(ROWS),
        advantages=torch.randn(ROWS),
        returns=step.values + torch.randn(ROWS),
    )
    return model, batch, batch.advantages


@pytest.mark.parametrize("kind", sorted(ACTION_SPACES))
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("clip_value_loss", [False, True])
def test_closed_form_gradient_matches_autograd(kind: str, activation: str, clip_value_loss: bool) -> None:
    model, batch, advantages = _case(kind, activation)
    options = LossSettings(clip_param=0.2, clip_value_loss=clip_value_loss, value_loss_coef=0.5, entropy_coef=0.05)

    reference = ppo_loss(model.evaluate(batch.obs, batch.actions), batch, advantages, options)
    model.zero_grad(set_to_none=True)
    reference.total.backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)

    with torch.no_grad():
        ours = ppo_loss_and_grads(model, batch, advantages, options)
    got = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}

    assert got.keys() == expected.keys()
    assert ("log_std" in got) == (kind == "continuous")
    for name, grad in expected.items():
        torch.testing.assert_close(got[name], grad, rtol=1e-5, atol=1e-6, msg=f"gradient of {name}")
    for field in reference._fields:
        torch.testing.assert_close(getattr(ours, field), getattr(reference, field).detach(), rtol=1e-6, atol=1e-7)
    assert 0.0 < float(ours.clip_fraction) < 1.0  # the case really exercises both branches


def test_clip_grad_norm_matches_torch() -> None:
    model, batch, advantages = _case("continuous", "tanh")
    with torch.no_grad():
        ppo_loss_and_grads(model, batch, advantages, LossSettings(0.2, False, 0.5, 0.01))
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [p.grad.clone() for p in params if p.grad is not None]
    total = clip_grad_norm(params, 0.1)
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    expected_total = torch.nn.utils.clip_grad_norm_(params, 0.1, foreach=True)
    torch.testing.assert_close(total, expected_total, rtol=0, atol=0)
    clipped_by_torch = [p.grad for p in params]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    clip_grad_norm(params, 0.1)
    for ours, theirs in zip((p.grad for p in params), clipped_by_torch, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    assert float(total) > 0.1  # the norm really was clipped


def test_fused_adam_step_equals_the_optimizer_step() -> None:
    trajectories = []
    for lean in (False, True):
        model, batch, advantages = _case("continuous", "tanh")
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, eps=1e-5, fused=True)
        for _ in range(5):
            optimizer.zero_grad(set_to_none=True)
            with torch.no_grad():
                ppo_loss_and_grads(model, batch, advantages, LossSettings(0.2, False, 0.5, 0.01))
            fused_adam_step(optimizer) if lean else optimizer.step()
        trajectories.append(([p.detach().clone() for p in model.parameters()], optimizer.state_dict()))
    (plain, plain_state), (lean_params, lean_state) = trajectories
    for a, b in zip(plain, lean_params, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for key, state in plain_state["state"].items():
        for name, value in state.items():
            torch.testing.assert_close(lean_state["state"][key][name], value, rtol=0, atol=0)
