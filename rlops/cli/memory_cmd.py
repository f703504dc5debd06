"""`rlops memory`: append to and check the project's memory bank."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rlops import memory

app = typer.Typer(help="The memory bank: dated decisions, progress, architecture and patches.", no_args_is_help=True)

BankOption = Annotated[Path | None, typer.Option("--bank", help="memory bank folder (default: nearest memory_bank/)")]


@app.command("add")
def add(
    kind: Annotated[memory.EntryKind, typer.Option("--kind", help="which record the entry belongs to")],
    title: Annotated[str, typer.Option("--title", help="one line")],
    body: Annotated[str, typer.Option("--body", help="the entry text (Markdown); '-' reads standard input")],
    bank: BankOption = None,
) -> None:
    """Append a UTC-timestamped entry (safe under concurrent writers)."""
    text = typer.get_text_stream("stdin").read() if body == "-" else body
    folder = bank or memory.find_bank()
    entry = memory.add_entry(folder, kind, title, text)
    typer.echo(f"added {entry.kind.value} entry '{entry.title}' to {folder / memory.KIND_FILES[entry.kind]}")


@app.command("validate")
def validate(bank: BankOption = None) -> None:
    """Check every file's format and that entries are in time order; exit 1 on any problem."""
    folder = bank or memory.find_bank()
    problems = memory.validate(folder)
    for problem in problems:
        typer.echo(f"{folder.name}/{problem}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"memory bank {folder} is valid")
