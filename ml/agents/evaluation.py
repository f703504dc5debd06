"""Deterministic evaluation of a policy on fresh single environments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from ml.agents.policy import Policy


class EvalResult(NamedTuple):
    mean_return: float
    std_return: float
    returns: list[float]


def evaluate(
    policy: Policy,
    make_env: Callable[[], gym.Env[Any, Any]],
    episodes: int,
    seed: int,
    deterministic: bool = True,
) -> EvalResult:
    """Run ``episodes`` complete episodes (seeds ``seed``, ``seed + 1``, ...) and report their returns."""
    env = make_env()
    returns: list[float] = []
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            total, done = 0.0, False
            while not done:
                action = policy.act(np.asarray(obs, dtype=np.float32), deterministic=deterministic)
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                done = bool(terminated or truncated)
            returns.append(total)
    finally:
        env.close()
    if not returns:
        return EvalResult(float("nan"), float("nan"), [])
    return EvalResult(float(np.mean(returns)), float(np.std(returns)), returns)
