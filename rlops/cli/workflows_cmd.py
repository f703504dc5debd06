"""`rlops workflows`: render the Argo workflows for GitOps, submit a run, follow its steps."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from workflows.submit import Server

app = typer.Typer(
    help="The research pipeline on the cluster: Argo Workflows templates, runs and their steps.",
    no_args_is_help=True,
)
ServerOption = Annotated[
    str | None, typer.Option("--server", help="Argo server URL (default: $ARGO_SERVER, host:port means https)")
]
TokenOption = Annotated[str | None, typer.Option("--token", help="bearer token (default: $ARGO_TOKEN)")]
NamespaceOption = Annotated[
    str | None, typer.Option("--namespace", help="workflow namespace (default: $ARGO_NAMESPACE, else argo)")
]
InsecureOption = Annotated[
    bool, typer.Option("--insecure-skip-tls-verify", help="accept any server certificate (never in production)")
]


def _server(url: str | None, token: str | None, namespace: str | None, insecure: bool) -> Server:
    from workflows.submit import Server

    return Server.resolve(url, token, namespace, verify_tls=not insecure)


@app.command("render")
def render(
    out: Annotated[Path, typer.Option("--out", help="folder Argo CD applies")] = Path("gitops/workflows"),
    check: Annotated[bool, typer.Option("--check", help="write nothing; exit 1 when the folder is stale")] = False,
) -> None:
    """Write every workflow as YAML (one file each, marked as generated) into gitops/workflows/."""
    from workflows import catalog

    if check:
        stale = catalog.stale_files(out)
        if stale:
            typer.echo(f"{out} is stale ({', '.join(stale)}): run `rlops workflows render`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out} is up to date")
        return
    for path in catalog.write_all(out):
        typer.echo(f"wrote {path}")


@app.command("submit")
def submit(
    name: Annotated[str, typer.Argument(help="rlops-research, rlops-train or rlops-backtest")],
    params: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE of a template parameter (repeat)")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the Workflow, send nothing")] = False,
    server: ServerOption = None,
    token: TokenOption = None,
    namespace: NamespaceOption = None,
    insecure: InsecureOption = False,
) -> None:
    """Start a run of a template through the Argo server; prints the run's name and where to watch it."""
    import yaml

    from rlops_core.errors import RlopsError
    from workflows import catalog
    from workflows import submit as argo

    entry = catalog.SUBMITTABLE.get(name)
    if entry is None:
        raise RlopsError(f"no workflow template {name!r}; templates: {', '.join(catalog.SUBMITTABLE)}")
    declared = entry.build().build().spec.arguments.parameters or []  # type: ignore[union-attr]
    if dry_run:
        workflow = argo.workflow_from_template(name, declared, params or [], argo.resolve_namespace(namespace))
        typer.echo(yaml.safe_dump(workflow, sort_keys=False), nl=False)
        return
    target = _server(server, token, namespace, insecure)
    workflow = argo.workflow_from_template(name, declared, params or [], target.namespace)
    run = argo.submit(target, workflow)
    typer.echo(f"submitted {run}")
    typer.echo(f"watch it: {target.ui_url(run)}")


@app.command("status")
def status(
    run: Annotated[str, typer.Argument(help="the run's name, as `submit` printed it")],
    server: ServerOption = None,
    token: TokenOption = None,
    namespace: NamespaceOption = None,
    insecure: InsecureOption = False,
) -> None:
    """Each step of a run with its phase."""
    from workflows.submit import run_status

    target = _server(server, token, namespace, insecure)
    phase, steps = run_status(target, run)
    table = Table("step", "phase", "started", "finished", "message", title=f"{run}: {phase}")
    for step in steps:
        table.add_row(step.name, step.phase, step.started, step.finished, step.message)
    console = Console()
    console.print(table)
    console.print(f"Argo UI: {target.ui_url(run)}")
