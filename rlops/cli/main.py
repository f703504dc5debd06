"""Entry point of the `rlops` command; turns every RlopsError into one readable line and a non-zero exit."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from rlops.cli import (
    backtest_cmd,
    data_cmd,
    demo_cmd,
    deploy_cmd,
    memory_cmd,
    patchbot_cmd,
    pipeline_cmd,
    report_cmd,
    serve_cmd,
    train_cmd,
    tune_cmd,
    workflows_cmd,
)
from rlops_core.errors import RlopsError

app = typer.Typer(
    name="rlops",
    help="Reinforcement-learning trading from research to production.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(backtest_cmd.app, name="backtest")
app.add_typer(data_cmd.app, name="data")
app.add_typer(deploy_cmd.app, name="deploy")
app.add_typer(memory_cmd.app, name="memory")
app.add_typer(patchbot_cmd.app, name="patchbot")
app.add_typer(pipeline_cmd.app, name="pipeline")
app.add_typer(workflows_cmd.app, name="workflows")
app.command("demo")(demo_cmd.demo)
app.command("train")(train_cmd.train)
app.command("serve")(serve_cmd.serve)
app.command("report")(report_cmd.report)
app.command("tune")(tune_cmd.tune)


def run() -> None:
    try:
        app()
    except RlopsError as exc:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"error: {exc}", markup=False)
        sys.exit(1)
