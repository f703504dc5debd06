"""`make bench-backtest`'s product-path benchmark, on a small grid: both commands run, their leaderboards agree."""

from __future__ import annotations

import re

import pytest

from tests.builders import run_benchmark


@pytest.mark.slow
def test_the_batch_benchmark_runs_both_paths_and_finds_them_identical() -> None:
    done = run_benchmark("benchmarks/backtest_batch.py", "--assets", "2", "--policies", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 checkpoints x 2 assets x 3 periods" in done.stdout
    assert "= 12 cells" in done.stdout
    ratio = re.search(r"the sweep is ([0-9.]+)x faster; leaderboards identical", done.stdout)
    assert ratio is not None, done.stdout
    assert float(ratio.group(1)) > 0
