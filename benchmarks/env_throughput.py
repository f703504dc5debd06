"""Environment steps per second: rlops' single and batched envs against gym-anytrading's StocksEnv.

Same data (the bundled S&P 500 daily bars), same observation window, random actions, one process. gym-anytrading
is installed for this benchmark only (`make bench-env`). Targets: batched >= 20x gym-anytrading's vectorised rate
and >= 2,000,000 env-steps/s; single >= 0.5x gym-anytrading's single env (ours simulates costs, slippage, limits,
borrow and cash accounting on every step; theirs tracks a long/short flag).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
from gym_anytrading.envs import StocksEnv

from ml.data.resolve import resolve_dataset
from ml.envs import BatchedTradingEnv, EnvConfig, EnvSpec, TradingEnv

WINDOW = 32


def rate(step: Callable[[], int], seconds: float) -> float:
    """Env-steps per second of `step` (which returns how many env-steps it took), after a warm-up call."""
    step()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += step()
    return done / (time.perf_counter() - start)


def single_stepper(env: gym.Env, actions: np.ndarray) -> Callable[[], int]:  # type: ignore[type-arg]
    env.reset(seed=0)
    state = {"i": 0}

    def step() -> int:
        for _ in range(1000):
            _, _, terminated, truncated, _ = env.step(actions[state["i"] % len(actions)])
            state["i"] += 1
            if terminated or truncated:
                env.reset()
        return 1000

    return step


def vector_stepper(env: gym.vector.VectorEnv, actions: np.ndarray) -> Callable[[], int]:  # type: ignore[type-arg]
    env.reset(seed=0)
    state = {"i": 0}

    def step() -> int:
        env.step(actions[state["i"] % len(actions)])
        state["i"] += 1
        return env.num_envs

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per contestant")
    parser.add_argument("--num-envs", type=int, default=256)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.num_envs

    spec = EnvSpec(dataset="sp500", period="train", env=EnvConfig(window=WINDOW))
    market = spec.market()
    ours_single = TradingEnv(market, spec.env, record=False)
    ours_batched = BatchedTradingEnv(market, spec.env, num_envs=n)

    frame = resolve_dataset("sp500").frame.rename(columns={"close": "Close"})
    bound = (WINDOW, len(frame))

    def anytrading() -> StocksEnv:
        return StocksEnv(frame, window_size=WINDOW, frame_bound=bound)

    their_single = anytrading()
    their_vector = gym.vector.SyncVectorEnv([anytrading for _ in range(n)])

    single_actions = rng.integers(0, 2, size=10_000)
    ours_single_actions = rng.integers(0, 3, size=10_000)
    batched_actions = rng.integers(0, 3, size=(64, n))
    vector_actions = rng.integers(0, 2, size=(64, n))

    results = {
        "rlops TradingEnv (single)": rate(single_stepper(ours_single, ours_single_actions), args.seconds),
        f"rlops BatchedTradingEnv (N={n})": rate(vector_stepper(ours_batched, batched_actions), args.seconds),
        "gym-anytrading StocksEnv (single)": rate(single_stepper(their_single, single_actions), args.seconds),
        f"gym-anytrading SyncVectorEnv (N={n})": rate(vector_stepper(their_vector, vector_actions), args.seconds),
    }
    width = max(map(len, results))
    print(f"env-steps per second, S&P 500 daily bars, window {WINDOW}, random actions")
    for name, value in results.items():
        print(f"  {name:<{width}}  {value:>14,.0f}")
    names = list(results)
    batched_vs_vector = results[names[1]] / results[names[3]]
    single_vs_single = results[names[0]] / results[names[2]]
    print(f"batched vs gym-anytrading vectorised: {batched_vs_vector:8.1f}x  (target >= 20x)")
    print(f"batched absolute:                     {results[names[1]]:>12,.0f}  (target >= 2,000,000)")
    print(f"single vs gym-anytrading single:      {single_vs_single:8.2f}x  (target >= 0.5x)")


if __name__ == "__main__":
    main()
