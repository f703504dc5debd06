"""PPO and A3C throughput and returns, with Stable-Baselines3's PPO as the peer.

One run (`make bench-agents`), one process at a time, torch limited to one intra-op thread for both libraries:

1. CartPole-v1, 8 environments, the same hyperparameters (rl-zoo's CartPole settings), 100k steps each:
   env-steps/s of training for rlops PPO and SB3 PPO, the ratio, and each one's deterministic evaluation.
2. The same on the trading environment (S&P 500 training period, 8 environments): rlops PPO on the batched
   env, SB3 PPO on its usual DummyVecEnv of 8 single trading envs; evaluation on the test period.
3. A3C throughput on CartPole with 1 and 2 workers.

Targets (issue 3): rlops PPO >= 2x SB3's env-steps/s on CartPole with an equal or better return, >= 3x on the
trading environment.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from sb3_peer import sb3_kwargs
from stable_baselines3 import PPO as SB3PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv

from ml.agents.a3c import train_a3c
from ml.agents.config import A3CConfig, PPOConfig
from ml.agents.env_sources import EnvSource, gym_source, trading_source
from ml.agents.evaluation import evaluate
from ml.agents.policy import load_policy
from ml.agents.ppo import train_ppo
from ml.agents.presets import cartpole_ppo, trading_ppo

EVAL_EPISODES = 10


class Outcome(NamedTuple):
    steps: int
    seconds: float
    eval_return: float

    @property
    def rate(self) -> float:
        return self.steps / self.seconds


def run_ours(config: PPOConfig, source: EnvSource, eval_source: EnvSource, episodes: int) -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        result = train_ppo(replace(config, eval_episodes=0), source, Path(tmp))
        assert result.checkpoint is not None
        policy = load_policy(result.checkpoint)
    score = evaluate(policy, eval_source.make_env, episodes, seed=10_000).mean_return
    return Outcome(result.steps_trained, result.wall_time_s, score)


def run_sb3(
    config: PPOConfig, make_train_env: Callable[[], Any], make_eval_env: Callable[[], Any], episodes: int
) -> Outcome:
    vec = DummyVecEnv([make_train_env for _ in range(config.num_envs)])
    model = SB3PPO("MlpPolicy", vec, **sb3_kwargs(config))
    start = time.perf_counter()
    model.learn(total_timesteps=config.total_timesteps)
    seconds = time.perf_counter() - start
    eval_env = make_vec_env(make_eval_env, n_envs=1, seed=10_000)
    mean, _ = evaluate_policy(model, eval_env, n_eval_episodes=episodes, deterministic=True)
    vec.close()
    eval_env.close()
    return Outcome(int(model.num_timesteps), seconds, float(mean))


def compare(title: str, ours: Outcome, sb3: Outcome, target: float) -> None:
    ratio = ours.rate / sb3.rate
    print(f"\n== {title}")
    print(f"{'':10s}{'steps':>10s}{'seconds':>10s}{'steps/s':>12s}{'eval return':>14s}")
    for name, row in (("rlops PPO", ours), ("SB3 PPO", sb3)):
        print(f"{name:10s}{row.steps:>10,d}{row.seconds:>10.1f}{row.rate:>12,.0f}{row.eval_return:>14.4g}")
    verdict = "meets" if ratio >= target else "misses"
    print(
        f"speed ratio rlops/SB3: {ratio:.2f}x ({verdict} the {target:.0f}x target); "
        f"return {'equal or better' if ours.eval_return >= sb3.eval_return else 'worse'}"
    )


def a3c_rate(workers: int, steps: int) -> tuple[float, float]:
    """(steps/s over the whole call, steady-state steps/s from the metrics rows after the first)."""
    config = A3CConfig(total_timesteps=steps, num_workers=workers, eval_interval=0, eval_episodes=0, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        result = train_a3c(config, gym_source("cartpole"), Path(tmp), log_interval=max(steps // 10, 1))
        with (Path(tmp) / "metrics.csv").open() as handle:
            rows = list(csv.DictReader(handle))
    steady = [float(r["steps_per_s"]) for r in rows[1:-1]] or [float(rows[-1]["steps_per_s"])]
    return result.steps_per_s, float(np.median(steady))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000, help="training steps per PPO run")
    parser.add_argument("--a3c-steps", type=int, default=40_000)
    parser.add_argument("--skip-trading", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)

    cartpole = cartpole_ppo(args.steps)
    source = gym_source("cartpole")
    ours = run_ours(cartpole, source, source, EVAL_EPISODES)
    sb3 = run_sb3(cartpole, source.make_env, source.make_env, EVAL_EPISODES)
    compare(f"CartPole-v1, 8 envs, {args.steps:,} steps", ours, sb3, target=2.0)

    if not args.skip_trading:
        trading = trading_ppo(args.steps)
        train_env, test_env = trading_source("sp500", "train"), trading_source("sp500", "test")
        ours = run_ours(trading, train_env, test_env, 1)
        sb3 = run_sb3(trading, train_env.make_env, test_env.make_env, 1)
        compare(
            f"trading env (sp500 train; eval: log return on the test period), 8 envs, {args.steps:,} steps",
            ours,
            sb3,
            target=3.0,
        )

    print("\n== A3C on CartPole-v1 (spawned worker processes; whole-call rate includes process start-up)")
    for workers in (1, 2):
        overall, steady = a3c_rate(workers, args.a3c_steps)
        print(f"{workers} worker(s): {steady:,.0f} steps/s steady state, {overall:,.0f} steps/s over the whole call")


if __name__ == "__main__":
    main()
