"""Learning quality across seeds: rlops PPO and A3C against Stable-Baselines3's PPO, reported the rliable way.

One run (`make bench-quality`):

1. For each task (CartPole-v1, Pendulum-v1, the trading env on the S&P 500 training period), rlops PPO and SB3 PPO
   train with the same hyperparameters on ``--seeds`` seeds each; rlops A3C trains on the same seeds with its own
   settings (SB3 has no A3C, so it is a third line, not part of the comparison).
2. Each run is scored by its deterministic policy: the mean return of 10 evaluation episodes (gymnasium tasks),
   or the log return and Sharpe of one pass over the *validation* period (trading env; tuning-free, the test
   period stays untouched). The same scoring runs at fixed step counts during training: the learning curve.
3. Per task and algorithm: the interquartile mean (IQM) of the final scores over seeds with a 95% stratified
   bootstrap interval (``ml.agents.aggregate``), the IQM curve with its band, and the training wall time
   (evaluation excluded). A Markdown table goes to stdout and ``--out-dir``, the plot to ``--plot``.
4. A3C stability: the continuous-action learning test's configuration (default gradient clip) on
   ``--a3c-stability-seeds`` seeds, counting runs that diverge (non-finite evaluation) or end below the test's
   threshold.

PPO runs go through a pool of ``--jobs`` processes (one torch thread each); A3C runs afterwards, one at a time,
because each already runs two worker processes. ``--smoke`` (2 seeds, 2% budgets) is the version the test suite runs.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import multiprocessing
import os
import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sb3_peer import sb3_kwargs

from ml.agents.a3c import train_a3c
from ml.agents.aggregate import Interval, iqm, stratified_bootstrap_ci
from ml.agents.config import A3CConfig, PPOConfig
from ml.agents.env_sources import EnvSource, MarketSource, gym_source, trading_source
from ml.agents.policy import load_policy
from ml.agents.ppo import PPOTrainer
from ml.agents.presets import TARGET_A3C_THRESHOLD, cartpole_ppo, target_a3c, target_source, trading_ppo
from ml.agents.vec_env import VecEnvAdapter
from ml.backtest.metrics import sharpe

ALGOS = ("rlops PPO", "SB3 PPO", "rlops A3C")
Act = Callable[[np.ndarray], Any]


@dataclass(frozen=True)
class Task:
    key: str
    title: str
    ppo: PPOConfig
    a3c: A3CConfig
    eval_episodes: int
    curve_points: int = 10

    @property
    def trading(self) -> bool:
        return self.key == "trading"

    def grid(self) -> list[int]:
        """Curve step counts: evenly spaced, each rounded up to a whole PPO rollout (where both PPOs can stop)."""
        size, total = self.ppo.rollout_size, self.ppo.num_iterations * self.ppo.rollout_size
        points = {-(-(total * i // self.curve_points) // size) * size for i in range(1, self.curve_points + 1)}
        return sorted(points)


def tasks(steps_scale: float) -> dict[str, Task]:
    def steps(n: int) -> int:
        return max(int(n * steps_scale), 1)

    # value_loss_coef 1.0 is SB3's default vf_coef 0.5 (see sb3_kwargs), which rl-zoo's settings assume; with
    # rlops' own 0.5 the critic learns at half that weight and Pendulum runs spread more (docs/agents.md).
    value = 1.0

    pendulum = PPOConfig(  # rl-zoo's Pendulum-v1 settings without gSDE (SB3-only), 8 envs
        num_envs=8,
        rollout_steps=256,
        batch_size=256,
        num_epochs=10,
        learning_rate=1e-3,
        lr_schedule="linear",
        gamma=0.9,
        gae_lambda=0.95,
        entropy_coef=0.0,
        normalize_obs=False,
    )
    trading = trading_ppo()  # bench-agents' trading settings
    return {
        "cartpole": Task(
            "cartpole",
            "CartPole-v1 (return)",
            replace(cartpole_ppo(steps(100_000)), value_loss_coef=value),
            A3CConfig(total_timesteps=steps(100_000)),
            eval_episodes=10,
        ),
        "pendulum": Task(
            "pendulum",
            "Pendulum-v1 (return)",
            replace(pendulum, total_timesteps=steps(100_000), value_loss_coef=value),
            A3CConfig(total_timesteps=steps(100_000), gamma=0.9),
            eval_episodes=10,
        ),
        "trading": Task(
            "trading",
            "trading env, sp500 (validation log return)",
            replace(trading, total_timesteps=steps(100_000), value_loss_coef=value),
            A3CConfig(total_timesteps=steps(100_000)),
            eval_episodes=1,
        ),
    }


@functools.cache
def sources(key: str) -> tuple[EnvSource, EnvSource]:
    """(training source, evaluation source); the trading env trains on train and is scored on validation."""
    if key == "trading":
        return trading_source("sp500", "train"), trading_source("sp500", "validation")
    source = gym_source(key)
    return source, source


@dataclass(frozen=True)
class Score:
    value: float
    """Mean evaluation return (gymnasium) or validation log return (trading)."""
    sharpe: float
    """Annualised Sharpe of the validation pass (trading env; NaN elsewhere)."""


def score(act: Act, task: Task) -> Score:
    """Deterministic episodes on fresh environments, the same seeds for every algorithm."""
    _, source = sources(task.key)
    env = source.make_env()
    returns: list[float] = []
    rewards: list[float] = []
    try:
        for episode in range(task.eval_episodes):
            obs, _ = env.reset(seed=10_000 + episode)
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(act(np.asarray(obs, dtype=np.float32)))
                total += float(reward)
                rewards.append(float(reward))
                done = bool(terminated or truncated)
            returns.append(total)
    finally:
        env.close()
    if not task.trading:
        return Score(float(np.mean(returns)), float("nan"))
    assert isinstance(source, MarketSource)
    periods = source.market.periods_per_year
    return Score(returns[0], sharpe(np.expm1(np.asarray(rewards)), periods))


@dataclass
class RunResult:
    algo: str
    task: str
    seed: int
    final: Score
    curve: list[tuple[int, Score]]
    train_s: float
    steps: int
    diverged: bool = False


def run_rlops_ppo(task: Task, seed: int) -> RunResult:
    torch.set_num_threads(1)
    config = replace(task.ppo, seed=seed, eval_episodes=0)
    source, _ = sources(task.key)
    trainer = PPOTrainer(config, VecEnvAdapter(source.make_vec_env(config.num_envs), source.name))
    grid, curve, train_s = task.grid(), [], 0.0
    try:
        while not trainer.done:
            start = time.perf_counter()
            trainer.iterate()
            train_s += time.perf_counter() - start
            if grid and trainer.global_step >= grid[0]:
                policy = trainer.policy()
                curve.append((trainer.global_step, score(policy.act, task)))
                policy.model.train()  # Policy switched the shared network to eval mode; no dropout/BN here
                while grid and trainer.global_step >= grid[0]:
                    grid.pop(0)
    finally:
        trainer.env.close()
    return RunResult("rlops PPO", task.key, seed, curve[-1][1], curve, train_s, trainer.global_step)


def run_sb3_ppo(task: Task, seed: int) -> RunResult:
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(1)
    config = replace(task.ppo, seed=seed)
    source, _ = sources(task.key)
    vec = DummyVecEnv([source.make_env for _ in range(config.num_envs)])
    model = SB3PPO("MlpPolicy", vec, **sb3_kwargs(config))
    grid, curve = task.grid(), []
    eval_s = 0.0

    def act(obs: np.ndarray) -> Any:
        return model.predict(obs, deterministic=True)[0]

    class Curve(BaseCallback):
        # At a rollout's start the previous rollout's update is done: the same point as after our iterate().
        def _on_rollout_start(self) -> None:
            nonlocal eval_s
            if grid and self.num_timesteps >= grid[0]:
                start = time.perf_counter()
                curve.append((self.num_timesteps, score(act, task)))
                eval_s += time.perf_counter() - start
                while grid and self.num_timesteps >= grid[0]:
                    grid.pop(0)

        def _on_step(self) -> bool:
            return True

    start = time.perf_counter()
    model.learn(total_timesteps=config.total_timesteps, callback=Curve())
    train_s = time.perf_counter() - start - eval_s
    curve.append((int(model.num_timesteps), score(act, task)))
    vec.close()
    return RunResult("SB3 PPO", task.key, seed, curve[-1][1], curve, train_s, int(model.num_timesteps))


def run_a3c(task: Task, seed: int) -> RunResult:
    grid = task.grid()
    config = replace(task.a3c, seed=seed, eval_interval=0, eval_episodes=0, checkpoint_interval=grid[0])
    source, _ = sources(task.key)
    curve: list[tuple[int, Score]] = []
    with tempfile.TemporaryDirectory() as tmp:
        result = train_a3c(config, source, Path(tmp), log_interval=config.total_timesteps)
        paths = sorted((Path(tmp) / "checkpoints").glob("step_*.pt"), key=lambda p: int(p.stem[5:]))
        for path in [*paths, Path(tmp) / "checkpoints" / "final.pt"]:
            policy = load_policy(path)
            diverged = not all(torch.isfinite(p).all() for p in policy.model.parameters())
            step = result.global_step if path.stem == "final" else int(path.stem[5:])
            curve.append((step, Score(float("nan"), float("nan")) if diverged else score(policy.act, task)))
    final = curve[-1][1]
    return RunResult(
        "rlops A3C",
        task.key,
        seed,
        final,
        curve,
        result.wall_time_s,
        result.global_step,
        not math.isfinite(final.value),
    )


RUNNERS: dict[str, Callable[[Task, int], RunResult]] = {
    "rlops PPO": run_rlops_ppo,
    "SB3 PPO": run_sb3_ppo,
    "rlops A3C": run_a3c,
}


def _run(job: tuple[str, Task, int]) -> RunResult:
    algo, task, seed = job
    return RUNNERS[algo](task, seed)


# --------------------------------------------------------------------------------------------------------------------
# aggregation and reporting


@dataclass(frozen=True)
class Row:
    task: str
    algo: str
    runs: int
    score: Interval
    sharpe: Interval | None
    train_s_median: float
    steps: int
    diverged: int


def interval(values: Sequence[float], reps: int) -> Interval:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return Interval(float("nan"), float("nan"), float("nan"))
    return stratified_bootstrap_ci([finite], iqm, reps=reps)


def summarize(results: list[RunResult], task_list: list[Task], reps: int) -> list[Row]:
    rows = []
    for task in task_list:
        for algo in ALGOS:
            runs = [r for r in results if r.task == task.key and r.algo == algo]
            if not runs:
                continue
            rows.append(
                Row(
                    task=task.key,
                    algo=algo,
                    runs=len(runs),
                    score=interval([r.final.value for r in runs], reps),
                    sharpe=interval([r.final.sharpe for r in runs], reps) if task.trading else None,
                    train_s_median=float(np.median([r.train_s for r in runs])),
                    steps=int(np.median([r.steps for r in runs])),
                    diverged=sum(r.diverged for r in runs),
                )
            )
    return rows


def fmt(value: Interval, digits: int) -> str:
    if not math.isfinite(value.point):
        return "n/a"
    return f"{value.point:.{digits}f} [{value.low:.{digits}f}, {value.high:.{digits}f}]"


def table(rows: list[Row], task_list: dict[str, Task]) -> str:
    lines = [
        "| task | algorithm | seeds | IQM score [95% CI] | IQM Sharpe [95% CI] | steps | train s (median) | diverged |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        trading = task_list[row.task].trading
        lines.append(
            f"| {task_list[row.task].title} | {row.algo} | {row.runs} | {fmt(row.score, 3 if trading else 1)} | "
            f"{fmt(row.sharpe, 2) if row.sharpe else ''} | {row.steps:,} | {row.train_s_median:.1f} | {row.diverged} |"
        )
    return "\n".join(lines)


def curve_bands(runs: list[RunResult], reps: int) -> tuple[list[int], list[Interval]]:
    """IQM and interval at each curve point (point i of every run; runs of one algorithm share the grid)."""
    length = min(len(r.curve) for r in runs)
    steps = [int(np.median([r.curve[i][0] for r in runs])) for i in range(length)]
    return steps, [interval([r.curve[i][1].value for r in runs], reps) for i in range(length)]


def plot(results: list[RunResult], task_list: list[Task], path: Path, reps: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(task_list), figsize=(5.2 * len(task_list), 3.8), squeeze=False)
    colors = {"rlops PPO": "tab:blue", "SB3 PPO": "tab:orange", "rlops A3C": "tab:green"}
    for axis, task in zip(axes[0], task_list, strict=True):
        for algo in ALGOS:
            runs = [r for r in results if r.task == task.key and r.algo == algo]
            if not runs:
                continue
            steps, bands = curve_bands(runs, reps)
            axis.plot(steps, [b.point for b in bands], color=colors[algo], label=f"{algo} ({len(runs)} seeds)")
            axis.fill_between(steps, [b.low for b in bands], [b.high for b in bands], color=colors[algo], alpha=0.2)
        axis.set_title(task.title, fontsize=10)
        axis.set_xlabel("environment steps")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    axes[0][0].set_ylabel("IQM of deterministic evaluation (95% CI)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------------------------
# A3C stability


def a3c_stability(seeds: int) -> tuple[int, int, list[float]]:
    """(diverged, below the test's threshold, scores) for the continuous A3C learning test on ``seeds`` seeds."""
    diverged = failed = 0
    scores: list[float] = []
    for seed in range(seeds):
        result = train_a3c(target_a3c(seed), target_source())
        value = result.evaluation.mean_return if result.evaluation is not None else float("nan")
        scores.append(value)
        diverged += not math.isfinite(value)
        failed += not value > TARGET_A3C_THRESHOLD
        print(f"  A3C continuous test, seed {seed}: eval {value:.4f}", flush=True)
    return diverged, failed, scores


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tasks", default="cartpole,pendulum,trading")
    parser.add_argument("--algos", default=",".join(ALGOS))
    parser.add_argument("--steps-scale", type=float, default=1.0, help="multiply every task's training budget")
    parser.add_argument("--jobs", type=int, default=2, help="PPO runs in parallel (processes)")
    parser.add_argument("--reps", type=int, default=50_000, help="bootstrap replicates for the final scores")
    parser.add_argument("--a3c-seeds", type=int, help="A3C seeds per task (default: --seeds)")
    parser.add_argument("--a3c-tasks", help="tasks A3C trains on (default: --tasks)")
    parser.add_argument("--a3c-stability-seeds", type=int, default=20)
    parser.add_argument("--out-dir", type=Path, default=Path("runs/bench-quality"))
    parser.add_argument("--plot", type=Path, default=Path("docs/images/agents_quality.png"))
    parser.add_argument("--smoke", action="store_true", help="2 seeds, tiny budgets: checks the whole path")
    args = parser.parse_args(argv)
    if args.smoke:
        # A3C pays seconds of process start-up per run: one seed on one task covers its path.
        args.seeds, args.steps_scale, args.reps = 2, 0.02, 2_000
        args.a3c_seeds, args.a3c_tasks, args.a3c_stability_seeds = 1, "cartpole", 0
    all_tasks = tasks(args.steps_scale)
    chosen = [all_tasks[key] for key in args.tasks.split(",")]
    algos = [a for a in ALGOS if a in args.algos.split(",")]
    torch.set_num_threads(1)
    start = time.perf_counter()

    ppo_jobs = [(a, t, s) for t in chosen for a in algos if a != "rlops A3C" for s in range(args.seeds)]
    results: list[RunResult] = []
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        for result in pool.map(_run, ppo_jobs):
            print(
                f"  {result.task:9s} {result.algo:10s} seed {result.seed}: {result.final.value:9.3f} "
                f"({result.train_s:.1f} s)",
                flush=True,
            )
            results.append(result)
    if "rlops A3C" in algos:
        a3c_tasks = (args.a3c_tasks or args.tasks).split(",")
        a3c_seeds = args.seeds if args.a3c_seeds is None else args.a3c_seeds
        for task in [t for t in chosen if t.key in a3c_tasks]:
            for seed in range(a3c_seeds):
                result = run_a3c(task, seed)
                print(
                    f"  {task.key:9s} rlops A3C  seed {seed}: {result.final.value:9.3f} ({result.train_s:.1f} s)",
                    flush=True,
                )
                results.append(result)
    rows = summarize(results, chosen, args.reps)
    stability = a3c_stability(args.a3c_stability_seeds) if args.a3c_stability_seeds else None
    wall = time.perf_counter() - start

    report = table(rows, all_tasks)
    print("\n" + report)
    if stability is not None:
        print(
            f"\nA3C continuous learning test, default clip, {args.a3c_stability_seeds} seeds: "
            f"{stability[0]} diverged, {stability[1]} below the threshold"
        )
    cpu = sum(
        getattr(resource.getrusage(who), field)
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        for field in ("ru_utime", "ru_stime")
    )
    # CPU time says what the run costs when other work shares the cores and stretches the wall time.
    print(f"\nwall time {wall:.0f} s with --jobs {args.jobs} on {os.cpu_count()} CPUs; CPU time {cpu:.0f} s")
    plot(results, chosen, args.plot, reps=2_000)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "table.md").write_text(report + "\n")
    (args.out_dir / "results.json").write_text(
        json.dumps(
            {
                "args": {k: str(v) for k, v in vars(args).items()},
                "wall_s": wall,
                "cpu_s": cpu,
                "rows": [asdict(row) for row in rows],
                "runs": [asdict(r) for r in results],
                "a3c_stability": stability,
            },
            indent=1,
        )
    )
    print(f"plot: {args.plot}\ntable and runs: {args.out_dir}")


if __name__ == "__main__":
    main()
