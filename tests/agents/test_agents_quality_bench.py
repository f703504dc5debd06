"""`make bench-quality` end to end at smoke size: every task and algorithm trains, is scored and aggregated."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.builders import run_benchmark


@pytest.mark.slow
def test_quality_benchmark_smoke(tmp_path: Path) -> None:
    plot = tmp_path / "curves.png"
    completed = run_benchmark(
        "benchmarks/agents_quality.py", "--smoke", "--out-dir", str(tmp_path / "out"), "--plot", str(plot)
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((tmp_path / "out" / "results.json").read_text())

    rows = {(row["task"], row["algo"]): row for row in results["rows"]}
    expected_ppo = {(task, algo) for task in ("cartpole", "pendulum", "trading") for algo in ("rlops PPO", "SB3 PPO")}
    assert set(rows) == expected_ppo | {("cartpole", "rlops A3C")}
    for key, row in rows.items():
        assert row["runs"] == (1 if key[1] == "rlops A3C" else 2)
        point, low, high = row["score"]
        assert all(math.isfinite(v) for v in (point, low, high)), key
        assert low <= point <= high, key
        assert row["train_s_median"] > 0
    # Trading runs are scored on the validation period, with a Sharpe beside the log return.
    assert all(math.isfinite(v) for v in rows[("trading", "SB3 PPO")]["sharpe"])

    runs = results["runs"]
    for run in runs:
        steps = [point[0] for point in run["curve"]]
        assert steps == sorted(steps) and steps[-1] == run["steps"]
    # rlops and SB3 PPO stop at the same whole-rollout step counts, so their curves share the grid.
    for task in ("cartpole", "pendulum", "trading"):
        grids = {tuple(p[0] for p in r["curve"]) for r in runs if r["task"] == task and r["algo"] != "rlops A3C"}
        assert len(grids) == 1, task
    table = (tmp_path / "out" / "table.md").read_text()
    assert table.count("\n") == 2 + len(rows)
