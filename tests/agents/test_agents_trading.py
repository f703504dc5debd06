"""Both agents on the trading environment: a synthetic market with a known optimal policy, costs included."""

from __future__ import annotations

import numpy as np
import pytest

from ml.agents.a3c import train_a3c
from ml.agents.config import A3CConfig, PPOConfig
from ml.agents.ppo import train_ppo

from .synthetic_market import oracle_return, synthetic_source


def test_oracle_beats_buy_and_hold_net_of_costs() -> None:
    source = synthetic_source()
    best = oracle_return(source.market)
    buy_and_hold = float(np.log(source.market.close[-1, 0] / source.market.open[0, 0]))
    assert best > 2.0  # about 1% a bar over 300 bars, minus flips
    assert best > buy_and_hold


@pytest.mark.slow
def test_ppo_reaches_90_percent_of_optimal() -> None:
    source = synthetic_source()
    config = PPOConfig(
        total_timesteps=16_384,
        num_envs=8,
        rollout_steps=64,
        batch_size=128,
        num_epochs=4,
        learning_rate=1e-3,
        gamma=0.9,
        reward_scale=100.0,
        eval_episodes=1,
    )
    result = train_ppo(config, source)
    assert result.evaluation is not None
    optimal = oracle_return(source.market)
    print(f"PPO synthetic market: {result.evaluation.mean_return:.3f} of optimal {optimal:.3f}")
    assert result.evaluation.mean_return >= 0.9 * optimal


@pytest.mark.slow
def test_a3c_reaches_90_percent_of_optimal() -> None:
    source = synthetic_source()
    config = A3CConfig(
        total_timesteps=16_000,
        num_workers=2,
        learning_rate=1e-3,
        gamma=0.9,
        reward_scale=100.0,
        eval_interval=0,
        eval_episodes=1,
    )
    result = train_a3c(config, source)
    assert result.evaluation is not None
    optimal = oracle_return(source.market)
    print(f"A3C synthetic market: {result.evaluation.mean_return:.3f} of optimal {optimal:.3f}")
    assert result.evaluation.mean_return >= 0.9 * optimal
