"""`rlops memory`: append to and check the project's memory bank."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rlops_core import memory
from rlops_core.errors import RlopsError

app = typer.Typer(help="The memory bank: dated decisions, progress, architecture and patches.", no_args_is_help=True)

BankOption = Annotated[Path | None, typer.Option("--bank", help="memory bank folder (default: nearest memory_bank/)")]


@app.command("add")
def add(
    kind: Annotated[memory.EntryKind | None, typer.Option("--kind", help="which record the entry belongs to")] = None,
    title: Annotated[str | None, typer.Option("--title", help="one line")] = None,
    body: Annotated[
        str | None, typer.Option("--body", help="the entry text (Markdown); '-' reads standard input")
    ] = None,
    from_file: Annotated[
        str | None,
        typer.Option("--from", help=f"an entry file ({memory.ENTRY_FILE} of a cluster run; local or s3://)"),
    ] = None,
    bank: BankOption = None,
) -> None:
    """Append a UTC-timestamped entry (safe under concurrent writers), given here or read from an entry file."""
    folder = bank or memory.find_bank()
    if from_file is not None:
        if kind is not None or title is not None or body is not None:
            raise RlopsError("--from takes the kind, title and body from the file: drop --kind, --title and --body")
        entry = _from_file(from_file)
        kind, title, text = entry.kind, entry.title, entry.body
        # The bank keeps time order by dating entries as they are appended; the run's own date stays in the body.
        text += f"\n\nRecorded {entry.timestamp.strftime(memory.TIMESTAMP_FORMAT)} in {from_file}."
    else:
        if kind is None or title is None or body is None:
            raise RlopsError("memory add needs --kind, --title and --body, or --from FILE")
        text = typer.get_text_stream("stdin").read() if body == "-" else body
    added = memory.add_entry(folder, kind, title, text)
    typer.echo(f"added {added.kind.value} entry '{added.title}' to {folder / memory.KIND_FILES[added.kind]}")


def _from_file(location: str) -> memory.Entry:
    from ml.data import storage  # boto3 loads only for an s3:// entry

    if not storage.exists(location):
        raise RlopsError(f"--from {location}: no such file")
    try:
        text = storage.read_bytes(location).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RlopsError(f"--from {location}: not UTF-8 text ({exc})") from exc
    return memory.parse_entry_file(text, location)


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
