"""Batch backtests: a grid into a ranked leaderboard; failing cells are reported, never abort the batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ml.backtest.batch import Grid, run_batch
from rlops_core.errors import RlopsError


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
        ({"policies": ["baseline:flat"], "metirc": "sharpe"}, "unknown grid key\\(s\\) metirc"),
        ({"policies": []}, "'policies' must list at least one policy"),
        ({"policies": ["baseline:flat"], "executor": "threads"}, "executor must be process or ray"),
        (
            {"policies": ["baseline:ma_crossover"], "params": {"fsat": 5}},
            r"params\[0\]\.fsat: no policy in this grid takes it \(ma_crossover takes fast, slow, short",
        ),
        (
            {
                "policies": ["baseline:buy_and_hold", "baseline:ma_crossover"],
                "params": [{"fast": 5}, {"slow": 9, "x": 1}],
            },
            r"params\[1\]\.x: no policy in this grid takes it",
        ),
        (
            {"policies": ["baseline:buy_and_hold"], "params": [{"fast": 5}]},
            r"params\[0\]\.fast: no policy in this grid",
        ),
        (
            {"policies": ["baseline:flat"], "env": [{"commission_bps": 1}, {"comission_bps": 5}]},
            r"env\[1\]\.comission_bps: unknown environment setting; known: .*commission_bps",
        ),
        (
            {"policies": ["baseline:flat"], "params": "fast=5"},
            "params must be a mapping or a non-empty list of mappings",
        ),
        ({"policies": "baseline:flat"}, "policies must be a list of strings"),
        ({"policies": ["baseline:flat"], "periods": ["wf:x"]}, "periods: 'wf:x' must read wf:N with N >= 1"),
    ],
)
def test_bad_grid_files_name_the_file_and_the_key(tmp_path: Path, settings: dict[str, object], message: str) -> None:
    path = write_grid(tmp_path / "g.yaml", **settings)
    with pytest.raises(RlopsError, match=message) as caught:
        Grid.from_yaml(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_parameters_multiply_only_the_policies_that_read_them(tmp_path: Path) -> None:
    grid = Grid.from_yaml(
        write_grid(
            tmp_path / "grid.yaml",
            policies=["baseline:buy_and_hold", "baseline:ma_crossover", str(tmp_path / "ckpt.pt")],
            periods=["validation", "test"],
            params=[{"fast": 10, "slow": 50}, {"fast": 20, "slow": 100}],
            env={"commission_bps": 1.0},  # one mapping is a list of one
        )
    )
    cells = grid.cells()
    runs: dict[tuple[str, str], list[dict[str, object]]] = {(c.policy, c.period): [] for c in cells}
    for c in cells:
        runs[(c.policy, c.period)].append(c.params)
    assert runs[("baseline:buy_and_hold", "test")] == [{}]
    assert runs[(str(tmp_path / "ckpt.pt"), "validation")] == [{}]
    assert runs[("baseline:ma_crossover", "test")] == [{"fast": 10, "slow": 50}, {"fast": 20, "slow": 100}]
    assert len(cells) == 2 * (1 + 2 + 1)
    assert [c.index for c in cells] == list(range(len(cells)))
    assert all(c.env == {"commission_bps": 1.0} for c in cells)


def test_a_baseline_refuses_parameters_it_does_not_read() -> None:
    from ml.backtest.engine import BacktestConfig, backtest

    with pytest.raises(RlopsError, match="baseline ma_crossover: unknown parameter\\(s\\) fsat; it takes fast, slow"):
        backtest("baseline:ma_crossover", "sp500", BacktestConfig(params={"fsat": 5}))
    with pytest.raises(RlopsError, match="baseline flat: unknown parameter\\(s\\) fast; it takes none"):
        backtest("baseline:flat", "sp500", BacktestConfig(params={"fast": 5}))


def rlops_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rlops.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_console_shows_each_cells_settings_and_never_nan(tmp_path: Path) -> None:
    grid = write_grid(
        tmp_path / "grid.yaml",
        policies=["baseline:flat", "baseline:ma_crossover", str(tmp_path / "missing.pt")],
        periods=["validation"],
        params=[{"fast": 10, "slow": 50}],
        env=[{"commission_bps": 2.5}],
        workers=1,
        bootstrap_samples=50,
    )
    result = rlops_cli("backtest", "batch", "--grid", grid, "--out", str(tmp_path / "out"), "--no-report")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    crossover = next(line for line in lines if "baseline:ma_crossover" in line)
    assert "fast=10, slow=50" in crossover and "commission_bps=2.5" in crossover
    flat = next(line for line in lines if "baseline:flat" in line)
    assert "commission_bps=2.5" in flat and "fast=" not in flat
    assert "none: cell failed" in next(line for line in lines if "│ failed" in line)
    assert "nan" not in result.stdout.lower()
    # Two successful cells: N = 2 with no tuning before them, too few configurations for a PBO.
    assert "3 cells, 1 failed; deflated Sharpe " in result.stdout
    assert "(N = 2, Sharpe variance " in result.stdout and ": 0 tuning trials + 2 cells)" in result.stdout
    assert "no PBO: only 2 configuration(s); PBO needs at least 4" in result.stdout


def test_a_batch_where_every_cell_failed_exits_nonzero_in_one_line(tmp_path: Path) -> None:
    grid = write_grid(tmp_path / "grid.yaml", policies=[str(tmp_path / "a.pt"), str(tmp_path / "b.pt")], workers=1)
    result = rlops_cli("backtest", "batch", "--grid", grid, "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("error: every one of the 2 cells failed (cell 0, ")
    assert "Traceback" not in result.stderr
    assert "nan" not in result.stdout.lower()
    assert "no deflated Sharpe: no cell finished" in result.stdout
    assert (tmp_path / "out" / "leaderboard.csv").exists()  # the failures are kept for reading


def test_unknown_ranking_metric_is_an_error_before_any_cell_runs(tmp_path: Path) -> None:
    with pytest.raises(RlopsError, match="grid: metric: unknown ranking metric 'happiness'; metrics: n_periods, "):
        Grid(policies=["baseline:flat"], metric="happiness")
    path = write_grid(tmp_path / "g.yaml", policies=["baseline:flat"], metric="sharp")
    with pytest.raises(RlopsError, match=f"^{path}: metric: unknown ranking metric 'sharp'"):
        Grid.from_yaml(path)
    assert Grid(policies=["baseline:flat"], metric="sharpe_ci_low").metric == "sharpe_ci_low"


def test_a_long_leaderboard_shows_its_best_rows_and_every_failure_on_the_console() -> None:
    from rlops.cli.backtest_cmd import CONSOLE_ROWS, _console_rows

    cells = 3 * CONSOLE_ROWS
    status = ["ok"] * (cells - 2) + ["failed"] * 2  # failed cells rank last
    board = pd.DataFrame({"rank": range(1, cells + 1), "status": status})
    shown = _console_rows(board)
    assert list(shown["rank"]) == [*range(1, CONSOLE_ROWS // 2 + 1), cells - 1, cells]
    short = board.iloc[:CONSOLE_ROWS]
    assert _console_rows(short) is short


def test_baseline_cells_run_in_forked_workers_with_the_per_cell_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's baseline cells skip the spawned pool (it re-imports the project per worker): they run in forked
    workers, their intervals drawn together, and give the per-cell path's leaderboard to the bit."""
    grid = Grid.from_yaml(
        write_grid(
            tmp_path / "grid.yaml",
            policies=["baseline:buy_and_hold", "baseline:ma_crossover", "baseline:flat"],
            datasets=["sp500"],
            periods=["validation", "test"],
            workers=2,
            bootstrap_samples=200,
        )
    )
    per_cell = run_batch(grid, str(tmp_path / "per-cell"), per_cell=True)

    def no_pool(*args: object) -> None:
        raise AssertionError("baseline cells went to the spawned pool")

    monkeypatch.setattr("ml.backtest.batch._run_process", no_pool)
    forked = run_batch(grid, str(tmp_path / "forked"))
    pd.testing.assert_frame_equal(forked.leaderboard, per_cell.leaderboard, check_exact=True)
    assert (forked.leaderboard["status"] == "ok").all()
    for cell in forked.leaderboard["cell"]:
        for name in ("timeseries.parquet", "trades.parquet"):
            ours = tmp_path / "forked" / "cells" / f"{cell:04d}" / name
            assert ours.read_bytes() == (tmp_path / "per-cell" / "cells" / f"{cell:04d}" / name).read_bytes()
