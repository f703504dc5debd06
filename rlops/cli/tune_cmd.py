"""`rlops tune`: Ray Tune hyperparameter search for PPO or A3C, scored on the validation split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rlops.cli.split_options import Embargo, SplitFractions, TestStart, ValidationStart, split_from_flags

_TABLE_ROWS = 15


def tune(
    algo: Annotated[str, typer.Option("--algo", help="ppo or a3c")] = "ppo",
    search: Annotated[str, typer.Option("--search", help="grid, random, bayes (Optuna TPE) or bayesopt")] = "bayes",
    samples: Annotated[int, typer.Option("--samples", help="trials (grid: repeats of the grid)")] = 8,
    scheduler: Annotated[str, typer.Option("--scheduler", help="asha (early stopping), pbt or none")] = "asha",
    dataset: Annotated[str, typer.Option("--dataset", help="dataset for the trading env")] = "sp500",
    metric: Annotated[str, typer.Option("--metric", help="backtest metric scored on validation")] = "sharpe",
    mode: Annotated[str | None, typer.Option("--mode", help="max or min (default: from the metric)")] = None,
    iterations: Annotated[int, typer.Option("--iterations", help="reports (scored chunks) per trial")] = 10,
    steps_per_iteration: Annotated[int, typer.Option("--steps-per-iteration", help="env steps per chunk")] = 4096,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="checkpoint every N reports")] = 1,
    folds: Annotated[int, typer.Option("--folds", help="walk-forward windows of the validation split")] = 1,
    space: Annotated[Path | None, typer.Option("--space", help="YAML search-space overrides")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML of fixed hyperparameters and env:")] = None,
    cpus_per_trial: Annotated[float, typer.Option("--cpus-per-trial")] = 1.0,
    gpus_per_trial: Annotated[float, typer.Option("--gpus-per-trial")] = 0.0,
    max_concurrent: Annotated[int, typer.Option("--max-concurrent", help="0: as resources allow")] = 0,
    max_failures: Annotated[int, typer.Option("--max-failures", help="retries of a failed trial")] = 1,
    address: Annotated[
        str | None, typer.Option("--address", help="auto or ray://host:port (default: start a local cluster)")
    ] = None,
    num_cpus: Annotated[int | None, typer.Option("--num-cpus", help="CPUs of the local cluster")] = None,
    storage: Annotated[str, typer.Option("--storage", help="directory or s3://bucket/prefix")] = "tune_results",
    name: Annotated[str | None, typer.Option("--name", help="experiment name (default: algo-search-time)")] = None,
    resume: Annotated[str | None, typer.Option("--resume", help="continue this experiment (its path)")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    smoke: Annotated[bool, typer.Option("--smoke", help="tiny budgets that check the pipeline")] = False,
    validation_start: ValidationStart = None,
    test_start: TestStart = None,
    split_fractions: SplitFractions = None,
    embargo: Embargo = None,
) -> None:
    """Search hyperparameters; writes leaderboard.csv/.parquet, best_config.yaml and best/ into the experiment."""
    from ml.agents.train import read_config_file
    from ml.tune.runner import resume_tune, run_tune
    from ml.tune.settings import TuneSettings
    from ml.tune.spaces import read_space_file

    split = split_from_flags(validation_start, test_start, split_fractions, embargo)
    if resume is not None:
        if split is not None:
            from rlops_core.errors import RlopsError

            raise RlopsError(
                f"--resume {resume} keeps the split the experiment started with; leave out the split flags"
            )
        outcome = resume_tune(resume, address=address, num_cpus=num_cpus)
    else:
        file = read_config_file(config) if config is not None else None
        settings = TuneSettings(
            algo=algo,
            search=search,
            samples=samples,
            scheduler=scheduler,
            dataset=dataset,
            metric=metric,
            mode=mode,
            iterations=iterations,
            steps_per_iteration=steps_per_iteration,
            checkpoint_every=checkpoint_every,
            folds=folds,
            cpus_per_trial=cpus_per_trial,
            gpus_per_trial=gpus_per_trial,
            max_concurrent=max_concurrent,
            max_failures=max_failures,
            address=address,
            num_cpus=num_cpus,
            storage=storage,
            name=name or "",
            space=read_space_file(space) if space is not None else {},
            base=dict(file.agent) if file else {},
            env=dict(file.env) if file else {},
            split=split.to_dict() if split is not None else {},
            seed=seed,
            smoke=smoke,
        )
        outcome = run_tune(settings)
    print_summary(outcome.leaderboard, outcome.experiment)
    from ml.backtest.overfitting import describe

    typer.echo(f"tuning leaderboard: {describe(outcome.overfitting)}")
    if outcome.best_checkpoint:
        typer.echo(f"best config: {outcome.experiment}/best_config.yaml; best checkpoint: {outcome.best_checkpoint}")


def print_summary(board: Any, experiment: str) -> None:
    from rich.console import Console
    from rich.table import Table

    # Wide enough for every searched parameter when the output is a pipe or a log (rich assumes 80 columns).
    console = Console(width=max(Console().width, 160))
    table = Table(title=f"trials of {experiment}")
    if board.empty:
        console.print("no trials ran")
        return
    score = next(c for c in board.columns if c.startswith("best_"))
    params = [c for c in board.columns if c.startswith("config/")]
    for column in ["trial_id", "status", "iterations", score, *params]:
        table.add_column(column.removeprefix("config/"), justify="right" if column != "trial_id" else "left")
    for _, row in board.head(_TABLE_ROWS).iterrows():
        table.add_row(*(_cell(row[c]) for c in ["trial_id", "status", "iterations", score, *params]))
    console.print(table)
    if len(board) > _TABLE_ROWS:
        console.print(f"... {len(board) - _TABLE_ROWS} more in leaderboard.csv")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
