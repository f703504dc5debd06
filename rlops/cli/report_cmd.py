"""`rlops report RUN_DIR`: the self-contained HTML report of a backtest or a batch folder (local or s3://)."""

from __future__ import annotations

from typing import Annotated

import typer


def report(
    run_dir: Annotated[str, typer.Argument(help="a folder or s3:// prefix written by `rlops backtest run` or batch")],
    cells: Annotated[
        bool, typer.Option("--cells/--no-cells", help="for a batch, also write each cell's report and link it")
    ] = False,
) -> None:
    """Write report.html and charts/*.png into RUN_DIR and print the report's path."""
    from ml.backtest.report import write_report  # matplotlib and pandas load only when a report is made

    typer.echo(write_report(run_dir, cells=cells))
