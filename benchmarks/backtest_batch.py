"""`rlops backtest batch` from the command line: 20 MLP checkpoints x 10 single-asset datasets x 10 years of
daily bars (the train, validation and test periods), the stacked sweep against `--per-cell` in the same run.

Both are the command users run, each in its own process (imports, dataset loading, every cell's result saved);
only the HTML report is left out (`--no-report`), since it is the same work on both paths. The two leaderboards
must be identical byte for byte, or the timing means nothing. Target: the sweep >= 20x the per-cell path.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from benchmarks.untrained_policies import random_policy_checkpoints
from ml.envs import EnvConfig, EnvSpec, TradingEnv

BARS, ASSETS, POLICIES = 2520, 10, 20
PERIODS = ["train", "validation", "test"]


def write_datasets(folder: Path, assets: int) -> list[str]:
    """One CSV of daily bars per asset, all on one calendar (so their markets share a layout)."""
    rng = np.random.default_rng(0)
    stamps = pd.bdate_range("2010-01-04", periods=BARS)
    paths = []
    for a in range(assets):
        close = 100 * np.exp(np.cumsum(rng.normal(3e-4, 0.012, BARS)))
        open_ = close * np.exp(rng.normal(0, 0.003, BARS))
        frame = pd.DataFrame(
            {
                "date": stamps.strftime("%Y-%m-%d"),
                "open": open_,
                "high": np.maximum(open_, close) * 1.004,
                "low": np.minimum(open_, close) * 0.996,
                "close": close,
                "volume": rng.uniform(1e6, 5e6, BARS),
            }
        )
        path = folder / f"S{a:02d}.csv"
        frame.to_csv(path, index=False)
        paths.append(str(path))
    return paths


def write_grid(path: Path, policies: list[str], datasets: list[str], periods: list[str]) -> str:
    path.write_text(yaml.safe_dump({"policies": policies, "datasets": datasets, "periods": periods, "workers": 2}))
    return str(path)


def batch(grid: str, out: Path, *flags: str) -> float:
    command = [sys.executable, "-m", "rlops.cli", "backtest", "batch", "--grid", grid, "--out", str(out)]
    start = time.perf_counter()
    done = subprocess.run([*command, "--no-report", *flags], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"rlops backtest batch {' '.join(flags)} failed:\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=int, default=ASSETS)
    parser.add_argument("--policies", type=int, default=POLICIES)
    args = parser.parse_args()
    config = EnvConfig(window=16)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        datasets = write_datasets(root, args.assets)
        market = EnvSpec(dataset=datasets[0], period="test", env=config).market()
        obs_dim = TradingEnv(market, config).sim.obs_size
        checkpoints = random_policy_checkpoints(
            root / "ckpt", obs_dim, len(config.levels), args.policies, {"window": 16}
        )
        policies = [str(p) for p in checkpoints]
        # Untimed: compiles (or loads from numba's disk cache) every kernel either path calls.
        warm = write_grid(root / "warm.yaml", policies[:2], datasets[:1], ["test"])
        batch(warm, root / "warm-swept")
        batch(warm, root / "warm-per-cell", "--per-cell")
        grid = write_grid(root / "grid.yaml", policies, datasets, PERIODS)
        swept = batch(grid, root / "swept")
        per_cell = batch(grid, root / "per-cell", "--per-cell")
        ours = (root / "swept" / "leaderboard.csv").read_text().splitlines()
        theirs = (root / "per-cell" / "leaderboard.csv").read_text().splitlines()
        if ours != theirs:
            differing = [f"  swept:    {a}\n  per-cell: {b}" for a, b in zip(ours, theirs, strict=False) if a != b]
            raise SystemExit("the two paths' leaderboards differ:\n" + "\n".join(differing[:5]))
        cells = len(pd.read_csv(root / "swept" / "leaderboard.csv"))
        decisions = sum(
            EnvSpec(dataset=datasets[0], period=period, env=config).market().decision_bars for period in PERIODS
        ) * (args.policies * args.assets)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"rlops backtest batch: {args.policies} checkpoints x {args.assets} assets x {len(PERIODS)} periods "
        f"({BARS} daily bars) = {cells} cells, {decisions:,} bar-decisions, 2 workers on {cores} cores"
    )
    print(f"    swept     {swept:6.1f} s  ({decisions / swept:,.0f} bar-decisions/s, whole command)")
    print(f"    per-cell  {per_cell:6.1f} s  ({decisions / per_cell:,.0f} bar-decisions/s, whole command)")
    print(f"    the sweep is {per_cell / swept:.1f}x faster; leaderboards identical  (target >= 20x)")


if __name__ == "__main__":
    main()
