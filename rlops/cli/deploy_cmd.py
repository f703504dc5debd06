"""`rlops deploy`: promote an image (and model) to an environment, roll it back, or show what git deploys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Deploy from git: each command is one commit on an environment's overlay.", no_args_is_help=True)

EnvArgument = Annotated[str, typer.Argument(help="environment: dev, staging or prod (gitops/inference/overlays/ENV)")]
RepoOption = Annotated[Path, typer.Option("--repo", help="a folder inside the rlops git checkout")]


@app.command("promote")
def promote_command(
    env: EnvArgument,
    image: Annotated[str, typer.Option("--image", help="image tag: the full git SHA CI built, or vX.Y.Z")],
    model: Annotated[
        str | None, typer.Option("--model", help="s3:// checkpoint; its pipeline backtest must pass the gate")
    ] = None,
    override: Annotated[
        str | None, typer.Option("--override", help="promote past the gate; the reason goes to the memory bank")
    ] = None,
    bank: Annotated[Path | None, typer.Option("--bank", help="memory bank for an override record")] = None,
    ran_in: Annotated[
        str | None, typer.Option("--from", help="refuse an image tag this environment never ran (e.g. staging)")
    ] = None,
    repo: RepoOption = Path(),
) -> None:
    """Point ENV at an image (and model) with one commit; Argo CD syncs it and Argo Rollouts runs the canary."""
    from rlops.deploy.actions import promote

    typer.echo(promote(repo, env, image, model, override, bank, ran_in).message)


@app.command("rollback")
def rollback_command(env: EnvArgument, repo: RepoOption = Path()) -> None:
    """Revert ENV's last promotion with one commit, so git never points at what Rollouts aborted."""
    from rlops.deploy.actions import rollback

    typer.echo(rollback(repo, env).message)


@app.command("status")
def status_command(env: EnvArgument, repo: RepoOption = Path()) -> None:
    """What git says ENV runs: image, model, and the commit that put them there."""
    from rlops.deploy.actions import status

    current = status(repo, env)
    typer.echo(f"{env}: image {current.release.image}")
    typer.echo(f"{env}: model {current.release.model}")
    if current.commit is not None:
        commit = current.commit
        typer.echo(f"commit {commit.sha[:12]} by {commit.author} at {commit.date}: {commit.subject}")
