"""The batched env equals N single envs step by step, including random starts and same-step auto-reset."""

from __future__ import annotations

import numpy as np
import pytest

from ml.envs import BatchedTradingEnv, EnvConfig, TradingEnv
from tests.builders import random_walk_market


@pytest.mark.parametrize(
    "config",
    [
        EnvConfig(window=4, episode_length=15, random_start=True),
        EnvConfig(window=2, action_mode="continuous", leverage=2.0, max_position=1.5, lot_size=1.0, episode_length=9),
        EnvConfig(window=3, reward="differential_sharpe", participation_cap=0.01, episode_length=20, random_start=True),
    ],
    ids=["discrete", "continuous-leveraged-lots", "dsr-capped"],
)
def test_batched_equals_single_envs_on_random_actions(config: EnvConfig) -> None:
    market = random_walk_market(bars=120, assets=2, seed=3)
    num_envs = 6
    batched = BatchedTradingEnv(market, config, num_envs=num_envs)
    singles = [TradingEnv(market, config, record=False) for _ in range(num_envs)]
    obs, _ = batched.reset(seed=100)
    single_obs = [env.reset(seed=100 + i)[0] for i, env in enumerate(singles)]
    np.testing.assert_array_equal(obs, np.stack(single_obs))
    rng = np.random.default_rng(0)
    endings = 0
    for _ in range(60):
        actions = np.stack([batched.single_action_space.sample() for _ in range(num_envs)])
        if config.action_mode == "continuous":
            actions = rng.uniform(-1.5, 1.5, size=actions.shape).astype(np.float32)
        obs, rewards, terminated, truncated, info = batched.step(actions)
        for i, env in enumerate(singles):
            o, r, te, tr, single_info = env.step(actions[i])
            assert r == rewards[i]
            assert (te, tr) == (terminated[i], truncated[i])
            if te or tr:
                endings += 1
                np.testing.assert_array_equal(info["final_obs"][i], o)
                assert info["final_equity"][i] == single_info["equity"]
                o, _ = env.reset()
            np.testing.assert_array_equal(obs[i], o)
    assert endings >= num_envs  # auto-reset was exercised for every env
