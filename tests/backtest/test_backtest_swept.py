"""`rlops backtest batch` runs checkpoint cells through the stacked sweep and writes exactly what the per-cell
path writes: the same leaderboards, batch summary and every cell's saved result."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.untrained_policies import random_policy_checkpoints
from ml.backtest.batch import Grid
from ml.backtest.swept_cells import run_swept
from ml.envs import EnvConfig, EnvSpec, TradingEnv
from tests.backtest.test_backtest_batch import rlops_cli, write_grid

CONFIG = EnvConfig(window=8)


def grid_file(tmp_path: Path) -> str:
    market = EnvSpec(dataset="sp500", period="validation", env=CONFIG).market()
    obs_dim = TradingEnv(market, CONFIG).sim.obs_size
    paths = random_policy_checkpoints(tmp_path / "ckpt", obs_dim, len(CONFIG.levels), 3, CONFIG.to_dict())
    return write_grid(
        tmp_path / "grid.yaml",
        # A baseline and a missing checkpoint take the per-cell path inside the same batch.
        policies=[*map(str, paths), "baseline:buy_and_hold", str(tmp_path / "missing.pt")],
        datasets=["sp500", "nasdaq"],
        periods=["validation", "wf:2"],
        env=[{"commission_bps": 5.0}],
        workers=2,
        bootstrap_samples=100,
    )


def test_checkpoint_cells_are_swept_and_the_rest_run_one_by_one(tmp_path: Path) -> None:
    grid = Grid.from_yaml(grid_file(tmp_path))
    cells = grid.cells()
    outcomes, rest = run_swept(cells, workers=2, save_to=None)
    checkpoints = [c for c in cells if c.policy.startswith(str(tmp_path / "ckpt"))]
    assert sorted(o.cell.index for o in outcomes) == [c.index for c in checkpoints]
    assert all(o.status == "ok" for o in outcomes)
    assert {c.policy for c in rest} == {"baseline:buy_and_hold", str(tmp_path / "missing.pt")}


def read_cell(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, object]]:
    summary = json.loads((folder / "result.json").read_text())
    summary.pop("saved_at")  # when it was written, the one field two runs cannot share
    return pd.read_parquet(folder / "timeseries.parquet"), pd.read_parquet(folder / "trades.parquet"), summary


@pytest.mark.slow  # two command-line batches, one of them through a process pool: about 23 s on 2 cores
def test_swept_batch_writes_what_the_per_cell_batch_writes(tmp_path: Path) -> None:
    grid = grid_file(tmp_path)
    swept, per_cell = tmp_path / "swept", tmp_path / "per-cell"
    for out, flags in ((swept, []), (per_cell, ["--per-cell"])):
        result = rlops_cli("backtest", "batch", "--grid", grid, "--out", str(out), "--no-report", *flags)
        assert result.returncode == 0, result.stderr
    for name in ("leaderboard.csv", "leaderboard.md", "batch.json", "grid.json", "leaderboard.parquet"):
        assert (swept / name).read_bytes() == (per_cell / name).read_bytes(), name
    board = pd.read_csv(swept / "leaderboard.csv")
    assert (board["status"] == "ok").sum() == 3 * 2 * 3 + 2 * 3
    cells = sorted(p.name for p in (per_cell / "cells").iterdir())
    assert sorted(p.name for p in (swept / "cells").iterdir()) == cells
    assert len(cells) == (board["status"] == "ok").sum()
    for name in cells:
        ours, theirs = read_cell(swept / "cells" / name), read_cell(per_cell / "cells" / name)
        pd.testing.assert_frame_equal(ours[0], theirs[0], check_exact=True)
        pd.testing.assert_frame_equal(ours[1], theirs[1], check_exact=True)
        assert ours[2] == theirs[2]
        for file in ("timeseries.parquet", "trades.parquet"):
            assert (swept / "cells" / name / file).read_bytes() == (per_cell / "cells" / name / file).read_bytes()
