"""Batch backtests: a grid into a ranked leaderboard; failing cells are reported, never abort the batch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from ml.backtest.batch import Grid, run_batch
from rlops.errors import RlopsError


def write_grid(path: Path, **settings: object) -> str:
    path.write_text(yaml.safe_dump(settings))
    return str(path)


def test_grid_runs_in_a_process_pool_and_reports_failed_cells(tmp_path: Path) -> None:
    grid = Grid.from_yaml(
        write_grid(
            tmp_path / "grid.yaml",
            policies=["baseline:buy_and_hold", "baseline:ma_crossover", str(tmp_path / "missing.pt")],
            datasets=["sp500"],
            periods=["validation", "wf:2"],
            env=[{"commission_bps": 5.0}],
            metric="sharpe",
            workers=2,
            bootstrap_samples=200,
        )
    )
    result = run_batch(grid, str(tmp_path / "out"))
    board = result.leaderboard
    assert len(board) == 9
    ok, failed = board[board["status"] == "ok"], board[board["status"] == "failed"]
    assert len(ok) == 6
    assert len(failed) == 3
    assert failed["error"].str.contains("does not exist").all()
    assert ok["sharpe"].tolist() == sorted(ok["sharpe"], reverse=True)
    assert board["rank"].tolist() == list(range(1, 10))
    assert board.iloc[-1]["status"] == "failed"
    assert 0.0 <= result.deflated_sharpe <= 1.0
    for name in ("leaderboard.parquet", "leaderboard.csv", "leaderboard.md", "batch.json"):
        assert (tmp_path / "out" / name).exists()
    saved = pd.read_parquet(tmp_path / "out" / "leaderboard.parquet")
    assert saved["sharpe"].dropna().tolist() == ok["sharpe"].tolist()
    assert "| 1 |" in (tmp_path / "out" / "leaderboard.md").read_text()


@pytest.mark.slow
def test_grid_runs_on_a_local_ray_cluster(tmp_path: Path) -> None:
    grid = Grid(policies=["baseline:buy_and_hold", "baseline:flat"], periods=["validation"], executor="ray",
                workers=2, bootstrap_samples=100)  # fmt: skip
    result = run_batch(grid, str(tmp_path / "ray"))
    assert (result.leaderboard["status"] == "ok").all()
    assert result.leaderboard.iloc[0]["policy"] == "baseline:buy_and_hold"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"policies": ["baseline:flat"], "colour": "red"}, "unknown grid key\\(s\\) colour"),
        ({"policies": []}, "'policies' must list at least one policy"),
        ({"policies": ["baseline:flat"], "executor": "threads"}, "executor must be process or ray"),
    ],
)
def test_bad_grid_files_are_clear_errors(tmp_path: Path, settings: dict[str, object], message: str) -> None:
    with pytest.raises(RlopsError, match=message):
        Grid.from_yaml(write_grid(tmp_path / "g.yaml", **settings))


def test_unknown_ranking_metric_is_an_error(tmp_path: Path) -> None:
    grid = Grid(policies=["baseline:flat"], periods=["validation"], metric="happiness", workers=1, bootstrap_samples=50)
    with pytest.raises(RlopsError, match="unknown ranking metric 'happiness'"):
        run_batch(grid)
