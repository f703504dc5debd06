"""`rlops train`: train PPO or A3C on the trading env (or a gymnasium control task) into runs/<name>/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rlops.cli.split_options import Embargo, SplitFractions, TestStart, ValidationStart, split_from_flags


def train(
    algo: Annotated[str, typer.Option("--algo", help="ppo or a3c")],
    dataset: Annotated[
        str, typer.Option("--dataset", help="named dataset, file, store or s3:// URL for the trading env")
    ] = "sp500",
    env: Annotated[
        str | None, typer.Option("--env", help="train on a gymnasium task instead (cartpole, pendulum, any id)")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML of hyperparameters (and env: settings)")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="continue from this checkpoint")] = None,
    smoke: Annotated[bool, typer.Option("--smoke", help="a tiny budget that checks the pipeline in seconds")] = False,
    total_timesteps: Annotated[int | None, typer.Option("--total-timesteps", help="override the budget")] = None,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu (default), cuda or auto")] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir")] = Path("runs"),
    name: Annotated[str | None, typer.Option("--name", help="run folder name (default: algo-env-timestamp)")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="live progress bar")] = True,
    validation_start: ValidationStart = None,
    test_start: TestStart = None,
    split_fractions: SplitFractions = None,
    embargo: Embargo = None,
) -> None:
    """Train an agent; writes config.yaml, metrics.csv, TensorBoard events and checkpoints, then a summary."""
    from ml.agents.train import build_request, run_training, summary_line  # torch loads only when training

    split = split_from_flags(validation_start, test_start, split_fractions, embargo)
    request = build_request(
        algo,
        dataset=dataset,
        env=env,
        config_path=config,
        resume=resume,
        smoke=smoke,
        runs_dir=runs_dir,
        name=name,
        overrides={"total_timesteps": total_timesteps, "seed": seed, "device": device},
        show_progress=progress,
        split=split.to_dict() if split is not None else None,
    )
    result = run_training(request)
    typer.echo(summary_line(result, request.run_dir))
