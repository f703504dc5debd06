"""The stacked sweep gives the same actions and equity as backtesting each policy on its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.untrained_policies import random_policy_checkpoints
from ml.agents.policy import load_policy
from ml.backtest.vectorized import StackedPolicy, sweep
from ml.envs import EnvConfig, EnvSpec, TradingEnv
from rlops_core.errors import RlopsError

CONFIG = EnvConfig(window=8)


def test_sweep_equals_one_policy_at_a_time(tmp_path: Path) -> None:
    markets = [EnvSpec(dataset=name, period="validation", env=CONFIG).market() for name in ("sp500", "nasdaq")]
    obs_dim = TradingEnv(markets[0], CONFIG).sim.obs_size
    paths = random_policy_checkpoints(tmp_path, obs_dim, len(CONFIG.levels), 3, CONFIG.to_dict())
    policies = [load_policy(p) for p in paths]
    obs = np.random.default_rng(0).normal(size=(3, 5, obs_dim)).astype(np.float32)
    stacked = StackedPolicy(policies).act(obs)
    for p, policy in enumerate(policies):
        np.testing.assert_array_equal(stacked[p], policy.act(obs[p]))
    result = sweep(policies, markets, CONFIG)
    assert result.decisions == 3 * 2 * markets[0].decision_bars
    for p, policy in enumerate(policies):
        for m, market in enumerate(markets):
            env = TradingEnv(market, CONFIG)
            observation, _ = env.reset(seed=0)
            equity = [CONFIG.initial_cash]
            done = False
            while not done:
                observation, _, terminated, truncated, info = env.step(int(policy.act(observation[None])[0]))
                equity.append(info["equity"])
                done = terminated or truncated
            np.testing.assert_array_equal(result.equity[p, m], np.asarray(equity))


@pytest.mark.parametrize("use_fork", [True, False], ids=["processes", "threads"])
def test_parallel_chunks_give_the_single_chunk_result(tmp_path: Path, use_fork: bool) -> None:
    markets = [EnvSpec(dataset=name, period="validation", env=CONFIG).market() for name in ("sp500", "nasdaq")]
    obs_dim = TradingEnv(markets[0], CONFIG).sim.obs_size
    paths = random_policy_checkpoints(tmp_path, obs_dim, len(CONFIG.levels), 5, CONFIG.to_dict())
    policies = [load_policy(p) for p in paths]
    one = sweep(policies, markets, CONFIG, workers=1)
    split = sweep(policies, markets, CONFIG, workers=2, use_fork=use_fork)
    np.testing.assert_array_equal(split.equity, one.equity)
    assert split.decisions == one.decisions
    with pytest.raises(RlopsError, match="workers must be >= 1"):
        sweep(policies, markets, CONFIG, workers=0)


def test_mismatched_policies_are_refused(tmp_path: Path) -> None:
    small = random_policy_checkpoints(tmp_path / "a", 10, 3, 1, {})
    large = random_policy_checkpoints(tmp_path / "b", 12, 3, 1, {})
    with pytest.raises(RlopsError, match="must share observation and action spaces"):
        StackedPolicy([load_policy(small[0]), load_policy(large[0])])
    market = EnvSpec(dataset="sp500", period="validation", env=CONFIG).market()
    with pytest.raises(RlopsError, match="policies expect observations of size 10"):
        sweep([load_policy(small[0])], [market], CONFIG)


def test_exact_actions_equal_one_observation_acting_on_near_ties(tmp_path: Path) -> None:
    # Two actions whose logits differ by about a rounding error: a batched product rounds differently from the
    # one-row product `Policy.act` makes, so the stacked pass flips some of these (124 of 1,500 on this
    # project's machine); `act_exact`, which the batch command's sweep uses, must never.
    import torch

    policies = [load_policy(p) for p in random_policy_checkpoints(tmp_path, 20, 3, 3, {})]
    noise = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for policy in policies:
            head = [m for m in policy.model.actor.modules() if isinstance(m, torch.nn.Linear)][-1]
            head.weight[0] *= 100
            head.weight[1] = head.weight[0] * (1 + 1e-6 * torch.randn(head.weight.shape[1], generator=noise))
            head.bias[1] = head.bias[0]
            head.weight[2] = 0.0
            head.bias[2] = -100.0
    obs = np.random.default_rng(0).normal(size=(3, 500, 20)).astype(np.float32)
    one = np.stack([np.concatenate([p.act(obs[i, r : r + 1]) for r in range(500)]) for i, p in enumerate(policies)])
    assert set(np.unique(one)) == {0, 1}  # the ties are live: both actions win somewhere
    exact = StackedPolicy(policies).act_exact(torch.from_numpy(obs))
    np.testing.assert_array_equal(exact.reshape(3, 500), one)
