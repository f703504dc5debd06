"""`rlops backtest`: one policy over one period, or a whole grid in parallel."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rlops.cli.split_options import Embargo, SplitFractions, TestStart, ValidationStart, split_from_flags

if TYPE_CHECKING:
    import pandas as pd

    from ml.backtest.batch import BatchResult

app = typer.Typer(help="Backtests through the environment's own execution, with honest metrics.", no_args_is_help=True)


@app.command("run")
def run(
    policy: Annotated[str, typer.Option("--policy", help="checkpoint path (or s3://) or baseline:NAME")],
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset", help="named dataset, file, store or s3:// URL (default: a checkpoint's own, else sp500)"
        ),
    ] = None,
    split: Annotated[str, typer.Option("--split", help="train, validation, test or wf:K/N")] = "test",
    costs_bps: Annotated[float | None, typer.Option("--costs-bps", help="commission in basis points")] = None,
    out: Annotated[str | None, typer.Option("--out", help="result folder or s3:// prefix")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    report: Annotated[bool, typer.Option("--report/--no-report", help="write the HTML report too")] = True,
    allow_in_sample: Annotated[
        bool,
        typer.Option("--allow-in-sample", help="score a checkpoint on dates it trained on (labelled in-sample)"),
    ] = False,
    validation_start: ValidationStart = None,
    test_start: TestStart = None,
    split_fractions: SplitFractions = None,
    embargo: Embargo = None,
) -> None:
    """Backtest one policy and save its result (Parquet + JSON) and report. A checkpoint is scored on the split it
    recorded unless split flags are given."""
    from pathlib import Path

    from ml.backtest.engine import BacktestConfig, backtest

    env = {} if costs_bps is None else {"commission_bps": costs_bps}
    chosen = split_from_flags(validation_start, test_start, split_fractions, embargo)
    settings = BacktestConfig(
        period=split,
        env=env,
        seed=seed,
        split=chosen.to_dict() if chosen is not None else None,
        allow_in_sample=allow_in_sample,
    )
    result = backtest(policy, dataset, settings)
    name = policy.removeprefix("baseline:").rsplit("/", 1)[-1].removesuffix(".pt")
    used = result.dataset.rstrip("/").rsplit("/", 1)[-1]
    destination = out or str(Path("runs") / f"backtest-{name}-{used}-{split.replace('/', '-')}")
    result.save(destination)
    table = Table("metric", "value")
    for key, value in result.metrics.items():
        table.add_row(key, f"{value:.6g}")
    low, high = result.sharpe_ci
    table.add_row("sharpe 95% CI", f"[{low:.3f}, {high:.3f}]")
    table.add_row("costs ($)", f"{result.costs.total:,.2f}")
    console = Console()
    sample = " [bold red]IN-SAMPLE[/bold red]" if result.in_sample else ""
    console.print(
        f"{result.policy} on {result.dataset} {split} ({result.period_start[:10]} .. {result.period_end[:10]}){sample}",
        highlight=False,
    )
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    console.print(table)
    console.print(f"result saved to {destination}")
    if report:
        from ml.backtest.report import write_report

        console.print(f"report: {write_report(destination)}")


@app.command("batch")
def batch(
    grid: Annotated[str, typer.Option("--grid", help="grid YAML: policies, datasets, periods, env, params, ...")],
    out: Annotated[str | None, typer.Option("--out", help="folder or s3:// prefix (default runs/batch-<grid>)")] = None,
    executor: Annotated[str | None, typer.Option("--executor", help="process or ray (overrides the grid)")] = None,
    address: Annotated[str | None, typer.Option("--address", help="existing Ray cluster (auto or ray://...)")] = None,
    report: Annotated[bool, typer.Option("--report/--no-report")] = True,
    per_cell: Annotated[
        bool,
        typer.Option(
            "--per-cell", help="run every cell on its own, not checkpoints together in one sweep (same results)"
        ),
    ] = False,
) -> None:
    """Run every cell of a grid in parallel; failed cells are listed with their errors, never abort the batch."""
    from dataclasses import replace

    from ml.backtest.batch import Grid, default_out, run_batch

    spec = Grid.from_yaml(grid)
    if executor is not None:
        spec = replace(spec, executor=executor)  # type: ignore[arg-type]
        spec.__post_init__()
    destination = out or default_out(grid)
    _show_batch(run_batch(spec, destination, address, per_cell=per_cell), destination, report)


def _settings(text: object) -> str:
    """A cell's env or params (JSON in the leaderboard) as `key=value, ...`; `-` when it has none."""
    import json

    values = json.loads(str(text)) if text else {}
    return ", ".join(f"{key}={value}" for key, value in values.items()) or "-"


def _statistic(row: dict[Hashable, Any], metric: str) -> str:
    """The ranking metric as printed: a number, or why there is none (never `nan`)."""
    import math

    value = row.get(metric)
    if row["status"] != "ok":
        return "none: cell failed"
    if not isinstance(value, int | float) or math.isnan(value):
        return f"none: {metric} not computed"
    return f"{value:.4f}"


CONSOLE_ROWS = 50  # beyond this a terminal table stops being read (and drawing it took a second per 600 rows)


def _console_rows(board: pd.DataFrame) -> pd.DataFrame:
    """The whole leaderboard when it is short; else its best half of CONSOLE_ROWS and every failed cell, whose
    errors must not scroll out of sight, in rank order."""
    if len(board) <= CONSOLE_ROWS:
        return board
    return board[(board["rank"] <= CONSOLE_ROWS // 2) | (board["status"] != "ok")]


def _show_batch(result: BatchResult, destination: str, report: bool) -> None:
    from rlops_core.errors import RlopsError

    board = result.leaderboard
    shown = _console_rows(board)
    table = Table("rank", "policy", "dataset", "period", "env", "params", "status", result.metric, "error")
    for row in shown.to_dict("records"):
        table.add_row(
            str(row["rank"]), str(row["policy"]), str(row["dataset"]), str(row["period"]), _settings(row["env"]),
            _settings(row["params"]), str(row["status"]), _statistic(row, result.metric), str(row["error"])[:80],
        )  # fmt: skip
    console = Console()
    console.print(table)
    if len(shown) < len(board):
        console.print(
            f"{len(board) - len(shown)} more ranked cells are not shown: every cell is in "
            f"{destination}/leaderboard.md (and .csv)"
        )
    if "in_sample" in board.columns and board["in_sample"].any():
        cells = ", ".join(str(c) for c in board.loc[board["in_sample"], "cell"])
        console.print(f"[bold red]IN-SAMPLE[/bold red] cell(s) {cells}: scored on dates their policy trained on")
    for text in dict.fromkeys(w for w in board.get("warnings", []) if w):
        console.print(f"[yellow]warning:[/yellow] {text}", highlight=False)
    failed = int((board["status"] != "ok").sum())
    from ml.backtest.overfitting import describe
    from ml.backtest.trial_count import deflation_line

    deflated = deflation_line(result.deflation, result.deflated_sharpe if result.trials else None)
    console.print(f"{len(board)} cells, {failed} failed; {deflated}")
    console.print(f"overfitting of the cells: {describe(result.overfitting)}")
    console.print(f"leaderboard saved to {destination}")
    if failed == len(board):
        # Nothing to rank or report: the batch as a whole failed, which scripts and workflows must see.
        first = board.iloc[0]
        raise RlopsError(
            f"every one of the {len(board)} cells failed (cell {first['cell']}, {first['policy']}: "
            f"{' '.join(str(first['error']).split())}); "
            f"leaderboard saved to {destination}"
        )
    if report:
        from ml.backtest.report import write_report

        console.print(f"report: {write_report(destination)}")


GridOption = Annotated[str, typer.Option("--grid", help="grid YAML (local or s3://), as `backtest batch` reads it")]


@app.command("cells")
def cells(
    grid: GridOption,
    to: Annotated[str | None, typer.Option("--to", help="write the JSON list here instead of printing it")] = None,
) -> None:
    """The grid's cell numbers as a JSON list: what a cluster workflow fans out over, one pod per cell."""
    import json

    from ml.backtest.batch import Grid
    from ml.data import storage

    text = json.dumps([cell.index for cell in Grid.from_yaml(grid).cells()])
    if to is None:
        typer.echo(text)
    else:
        storage.write_bytes(to, text.encode())


@app.command("cell")
def cell(
    grid: GridOption,
    index: Annotated[int, typer.Option("--index", help="which cell (see `rlops backtest cells`)")],
    out: Annotated[str, typer.Option("--out", help="the batch's folder or s3:// prefix, shared by every cell")],
) -> None:
    """Run one cell of a grid into OUT/cells/NNNN; a failed backtest is recorded there, as `batch` records it."""
    from ml.backtest.batch import Grid, run_one_cell

    outcome = run_one_cell(Grid.from_yaml(grid), index, out)
    detail = f": {outcome.error}" if outcome.error else ""
    typer.echo(f"cell {index} ({outcome.cell.policy}, {outcome.cell.period}): {outcome.status}{detail}")


@app.command("merge")
def merge(
    grid: GridOption,
    out: Annotated[str, typer.Option("--out", help="the folder or s3:// prefix the cells ran into")],
    report: Annotated[bool, typer.Option("--report/--no-report")] = True,
) -> None:
    """Rank the cells that `rlops backtest cell` ran under OUT into one leaderboard (and report)."""
    from ml.backtest.batch import Grid, merge_cells

    _show_batch(merge_cells(Grid.from_yaml(grid), out), out, report)
