"""GAE, n-step returns, running normalization and schedules against plain Python references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.agents.gae import compute_gae, next_state_values
from ml.agents.normalization import RunningMeanStd
from ml.agents.schedules import learning_rate_at


def reference_gae(rewards, values, last_values, terminated, truncated, final_values, gamma, lam):
    """Textbook GAE, one environment and one step at a time."""
    steps, envs = len(rewards), len(rewards[0])
    advantages = [[0.0] * envs for _ in range(steps)]
    for env in range(envs):
        running = 0.0
        for t in reversed(range(steps)):
            if terminated[t][env]:
                next_value = 0.0
            elif truncated[t][env]:
                next_value = final_values[t][env]
            elif t == steps - 1:
                next_value = last_values[env]
            else:
                next_value = values[t + 1][env]
            delta = rewards[t][env] + gamma * next_value - values[t][env]
            episode_continues = not (terminated[t][env] or truncated[t][env])
            running = delta + gamma * lam * running * episode_continues
            advantages[t][env] = running
    returns = [[advantages[t][e] + values[t][e] for e in range(envs)] for t in range(steps)]
    return advantages, returns


@pytest.mark.parametrize(("gamma", "lam"), [(0.99, 0.95), (0.9, 1.0), (0.98, 0.0)])
def test_gae_matches_python_loop(gamma: float, lam: float) -> None:
    rng = np.random.default_rng(7)
    steps, envs = 17, 5
    rewards = rng.normal(size=(steps, envs))
    values = rng.normal(size=(steps, envs))
    last_values = rng.normal(size=envs)
    final_values = rng.normal(size=(steps, envs))
    terminated = rng.random((steps, envs)) < 0.1
    truncated = (rng.random((steps, envs)) < 0.1) & ~terminated
    truncated[-1, 0] = True  # truncation on the rollout's last step must still use the final value
    terminated[-1, 1], truncated[-1, 1] = True, False

    t = {
        k: torch.tensor(v, dtype=torch.float64)
        for k, v in {"r": rewards, "v": values, "last": last_values, "final": final_values}.items()
    }
    term, trunc = torch.tensor(terminated), torch.tensor(truncated)
    next_values = next_state_values(t["v"], t["last"], trunc, t["final"])
    result = compute_gae(t["r"], t["v"], next_values, term, trunc, gamma, lam)

    adv, ret = reference_gae(
        rewards.tolist(),
        values.tolist(),
        last_values.tolist(),
        terminated.tolist(),
        truncated.tolist(),
        final_values.tolist(),
        gamma,
        lam,
    )
    np.testing.assert_allclose(result.advantages.numpy(), np.array(adv), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(result.returns.numpy(), np.array(ret), rtol=1e-12, atol=1e-12)


def test_lambda_one_gives_discounted_n_step_returns() -> None:
    rewards = [1.0, 2.0, 3.0]
    bootstrap, gamma = 10.0, 0.5
    values = torch.zeros(3, 1, dtype=torch.float64)
    r = torch.tensor(rewards, dtype=torch.float64).unsqueeze(1)
    no = torch.zeros(3, 1, dtype=torch.bool)
    next_values = next_state_values(values, torch.tensor([bootstrap], dtype=torch.float64), no, values)
    returns = compute_gae(r, values, next_values, no, no, gamma, 1.0).returns.squeeze(1).tolist()
    expected = [1 + 0.5 * 2 + 0.25 * 3 + 0.125 * 10, 2 + 0.5 * 3 + 0.25 * 10, 3 + 0.5 * 10]
    assert returns == pytest.approx(expected)


def test_running_mean_std_matches_numpy_over_batches() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(1000, 4))
    rms = RunningMeanStd(4)
    for chunk in np.array_split(data, 13):
        rms.update(torch.from_numpy(chunk))
    np.testing.assert_allclose(rms.mean.numpy(), data.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(rms.var.numpy(), data.var(axis=0), rtol=1e-4)
    normalized = rms.normalize(torch.from_numpy(data).float())
    assert normalized.dtype == torch.float32
    assert abs(float(normalized.mean())) < 1e-3
    assert float(normalized.abs().max()) <= 10.0


def test_learning_rate_schedules() -> None:
    assert learning_rate_at(1e-3, "constant", 0.7) == 1e-3
    assert learning_rate_at(1e-3, "linear", 0.0) == 1e-3
    assert learning_rate_at(1e-3, "linear", 0.25) == pytest.approx(7.5e-4)
    assert learning_rate_at(1e-3, "linear", 1.5) == 0.0
