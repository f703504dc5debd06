"""`rlops pipeline`: the whole research pipeline locally, or one stage as a workflow step runs it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rlops.cli.split_options import Embargo, SplitFractions, TestStart, ValidationStart, split_from_flags

if TYPE_CHECKING:
    from ml.data.splits import SplitConfig

app = typer.Typer(
    help="The research pipeline: validate -> tune -> retrain -> backtest on test -> report -> record.",
    no_args_is_help=True,
)
ConfigOption = Annotated[str | None, typer.Option("--config", help="pipeline YAML (unknown keys are errors)")]
ForceOption = Annotated[bool, typer.Option("--force", help="rerun even when the outputs are up to date")]


def _config(
    path: str | None,
    smoke: bool,
    out: str | None,
    dataset: str | None,
    bank: Path | None = None,
    split: SplitConfig | None = None,
    walk_forward: int | None = None,
) -> object:
    from dataclasses import replace

    from ml.pipeline.config import PipelineConfig

    config = PipelineConfig.from_yaml(path) if path else PipelineConfig()
    if split is not None:
        config = replace(config, split=split)
    if walk_forward is not None:
        config = replace(
            config, walk_forward=replace(config.walk_forward, folds=walk_forward)
        )  # replace runs its checks
    if smoke:
        config = replace(config, smoke=True, samples=min(config.samples, 2), iterations=min(config.iterations, 2))
    if out:
        config = replace(config, out=out)
    if dataset:
        config = replace(config, dataset=dataset)
    if bank is not None:
        # Absolute, so the record stage's key names one bank whatever folder the next run starts in.
        config = replace(config, memory_bank=str(bank.resolve()))
    return config


@app.command("run")
def run(
    config: ConfigOption = None,
    out: Annotated[str | None, typer.Option("--out", help="folder or s3:// prefix for every stage's output")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset")] = None,
    smoke: Annotated[bool, typer.Option("--smoke", help="the smallest budgets: checks the chain end to end")] = False,
    force: ForceOption = False,
    bank: Annotated[
        Path | None,
        typer.Option("--bank", help="also append the run's entry to this memory bank (default: the run's output only)"),
    ] = None,
    validation_start: ValidationStart = None,
    test_start: TestStart = None,
    split_fractions: SplitFractions = None,
    embargo: Embargo = None,
    walk_forward: Annotated[
        int | None,
        typer.Option("--walk-forward", help="K: retrain before each of K folds of the test split, score each, stitch"),
    ] = None,
) -> None:
    """Every stage in order; finished stages whose inputs did not change are reused."""
    from ml.pipeline.config import PipelineConfig
    from ml.pipeline.runner import run_pipeline

    split = split_from_flags(validation_start, test_start, split_fractions, embargo)
    settings = _config(config, smoke, out, dataset, bank, split, walk_forward)
    assert isinstance(settings, PipelineConfig)
    console = Console()
    runs = run_pipeline(settings, say=console.print, force=force)
    results = {r.stage: r.result for r in runs}
    table = Table("rank", "policy", "Sharpe (test)", "total return", "max drawdown", title="test-split leaderboard")
    for row in results["backtest"]["leaderboard"]:  # type: ignore[attr-defined]
        table.add_row(
            str(row["rank"]), row["policy"], f"{row['sharpe']:.3f}", f"{row['total_return']:+.2%}",
            f"{row['max_drawdown']:.2%}",
        )  # fmt: skip
    console.print(table)
    from ml.backtest.trial_count import deflation_line

    tested: Any = results["backtest"]
    console.print(f"best on test: {deflation_line(tested.get('deflation'), tested['deflated_sharpe'])}")
    walked: Any = tested.get("walk_forward")
    if walked:
        _show_walk_forward(console, walked)
    console.print(f"report: {results['report']['report']}")
    record = results["record"]
    where = f"; appended to {record['bank']}" if "bank" in record else " (append it to a bank with --bank PATH)"
    console.print(f"memory entry: {record['entry']}{where}")
    reused = [r.stage for r in runs if r.skipped]
    if reused:
        console.print(f"reused finished stages: {', '.join(reused)}")


def _show_walk_forward(console: Console, walked: dict[str, Any]) -> None:
    table = Table(
        "policy", "Sharpe", "total return", "max drawdown", title=f"walk-forward: {walked['folds']} folds, stitched"
    )
    for row in walked["overall"]:
        table.add_row(
            row["policy"], f"{row['sharpe']:.3f}", f"{row['total_return']:+.2%}", f"{row['max_drawdown']:.2%}"
        )
    console.print(table)
    console.print(f"per-fold results: {walked['table']}; stitched equity: {walked['equity']}")


@app.command("stage")
def stage(
    name: Annotated[str, typer.Argument(help="data, tune, train, backtest, report or record")],
    output: Annotated[str, typer.Option("--output", help="this stage's output folder or s3:// prefix")],
    inputs: Annotated[
        list[str] | None, typer.Option("--input", help="STAGE=LOCATION of an input stage's output (repeat)")
    ] = None,
    config: ConfigOption = None,
    settings_set: Annotated[
        list[str] | None,
        typer.Option("--set", help="KEY=VALUE pipeline setting on top of --config (repeat), e.g. algos=[ppo]"),
    ] = None,
    force: ForceOption = False,
) -> None:
    """One stage with explicit inputs and outputs, as one container of a cluster workflow runs it."""
    from ml.pipeline.config import PipelineConfig
    from ml.pipeline.runner import run_stage
    from ml.pipeline.stages import stage_named
    from rlops_core.errors import RlopsError

    chosen = stage_named(name)
    locations = {}
    for item in inputs or []:
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise RlopsError(f"--input must read STAGE=LOCATION (got '{item}')")
        locations[key] = value
    unknown = sorted(set(locations) - set(chosen.inputs))
    if unknown:
        raise RlopsError(f"stage {name} takes inputs {', '.join(chosen.inputs) or 'none'}, not {', '.join(unknown)}")
    settings = PipelineConfig.from_yaml(config) if config else PipelineConfig()
    if settings_set:
        settings = settings.with_overrides(settings_set)
    console = Console()
    result = run_stage(chosen, settings, locations, output, console.print, force)
    console.print(f"stage {name}: {'up to date' if result.skipped else 'done'} -> {output}")


@app.command("stages")
def stages() -> None:
    """The stage contract: each stage's inputs, its output and the settings that change it."""
    from ml.pipeline.stages import STAGES

    table = Table("stage", "inputs", "output holds", "settings")
    for item in STAGES:
        table.add_row(item.name, ", ".join(item.inputs) or "-", item.produces, ", ".join(item.settings) or "-")
    Console().print(table)
