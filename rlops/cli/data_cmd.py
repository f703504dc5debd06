"""`rlops data`: list, show, validate and ingest market data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from rlops.cli.split_options import Embargo, SplitFractions, TestStart, ValidationStart, split_from_flags

if TYPE_CHECKING:
    from ml.data.bars import Bars
    from ml.data.loader import LoadOptions
    from ml.data.splits import SplitConfig

app = typer.Typer(help="Market data: named datasets, validation, ingestion into a Parquet store.", no_args_is_help=True)
TzOption = Annotated[str, typer.Option("--tz", help="time zone that naive timestamps are read in")]
GapOption = Annotated[str, typer.Option("--gaps", help="report (default) or error when bars are missing")]


def _options(tz: str, gaps: str) -> LoadOptions:
    """The load options, each bad flag refused by name (one line, not a usage box)."""
    from ml.data.loader import LoadOptions, check_tz
    from rlops_core.errors import RlopsError

    check_tz(tz, "--tz")
    if gaps not in ("report", "error"):
        raise RlopsError(f"--gaps '{gaps}': must be report or error")
    return LoadOptions(tz=tz, gap_policy="error" if gaps == "error" else "report")


@app.command("list")
def list_datasets() -> None:
    """The named datasets that ship with rlops (no network needed)."""
    from ml.data.datasets import DATASETS

    table = Table("name", "description")
    for item in DATASETS.values():
        table.add_row(item.name, item.description)
    Console().print(table)


@app.command("show")
def show(
    dataset: Annotated[str, typer.Argument(help="named dataset, file, store folder or s3:// URL")],
    splits: Annotated[
        bool, typer.Option("--splits", help="also the train / validation / test dates and bars (split flags apply)")
    ] = False,
    validation_start: ValidationStart = None,
    test_start: TestStart = None,
    split_fractions: SplitFractions = None,
    embargo: Embargo = None,
) -> None:
    """Summary of a dataset: symbols, date range, bar frequency, gaps, fingerprint and the last bars."""
    from ml.data.fingerprint import fingerprint, labelled
    from ml.data.resolve import resolve_dataset

    bars = resolve_dataset(dataset)
    frame = bars.frame
    console = Console()
    console.print(f"[bold]{bars.name}[/bold]: {len(frame)} bars, symbols {', '.join(bars.symbols)}")
    console.print(f"from {frame['timestamp'].min().isoformat()} to {frame['timestamp'].max().isoformat()}")
    basis = "declared" if bars.declared_periods_per_year is not None else bars.calendar.kind
    console.print(
        f"bar spacing {bars.bar_spacing}, {bars.periods_per_year:g} bars per year ({basis}), {len(bars.gaps)} gap(s)"
    )
    for gap in bars.gaps[:10]:
        console.print(f"  gap {gap}")
    console.print(labelled(fingerprint(frame)))
    console.print(frame.tail(5).to_string(index=False))
    chosen = split_from_flags(validation_start, test_start, split_fractions, embargo)
    if chosen is not None and not splits:
        from rlops_core.errors import RlopsError

        raise RlopsError("split flags (--validation-start, --test-start, --split-fractions, --embargo) need --splits")
    if splits:
        _show_splits(console, bars, chosen)


def _show_splits(console: Console, bars: Bars, chosen: SplitConfig | None) -> None:
    """Each part's dates and bars as training and backtests will cut them (the default features' warm-up)."""
    from ml.data.features import FeatureConfig
    from ml.data.splits import SplitConfig, resolve_checked
    from ml.envs.config import EnvConfig

    config = chosen or SplitConfig()
    warmup = FeatureConfig().warmup
    stamps = bars.panel().timestamps
    split = resolve_checked(config, stamps, warmup, bars.name, EnvConfig().window)
    warm = f" ({split.embargo} bars)" if config.embargo is None else ""
    console.print(f"split: {config.describe()}{warm}", highlight=False)
    for name in ("train", "validation", "test"):
        span = split.part(name)
        first, last = stamps[span.start].isoformat(), stamps[span.stop - 1].isoformat()
        console.print(f"{name:>10}: {first} .. {last} ({len(span)} bars)", highlight=False)


@app.command("validate")
def validate(
    paths: Annotated[list[str], typer.Argument(help="files or folders (CSV or Parquet; local or s3://)")],
    tz: TzOption = "UTC",
    gaps: GapOption = "report",
) -> None:
    """Check every file and print a report; exits 1 if any file has an error."""
    from ml.data.errors import DataValidationError
    from ml.data.loader import load_bars

    try:
        bars = load_bars(paths, _options(tz, gaps))
    except DataValidationError as exc:
        for issue in exc.issues:
            typer.echo(f"error: {issue}", err=True)
        typer.echo(f"{len(exc.issues)} error(s) in {', '.join(paths)}", err=True)
        raise typer.Exit(1) from exc
    for gap in bars.gaps:
        typer.echo(f"gap: {gap}")
    typer.echo(f"ok: {len(bars.frame)} bars, {len(bars.symbols)} symbol(s), {len(bars.gaps)} gap(s) reported")


@app.command("ingest")
def ingest(
    sources: Annotated[list[str], typer.Argument(help="raw CSV/Parquet files or folders (local or s3://)")],
    to: Annotated[str, typer.Option("--to", help="store folder or s3:// prefix")],
    tz: TzOption = "UTC",
    periods_per_year: Annotated[
        float | None,
        typer.Option(
            "--periods-per-year", help="bars per year to annualise with (default: inferred from the calendar)"
        ),
    ] = None,
) -> None:
    """Validate raw files and write a normalised Parquet store with a manifest (no-op if unchanged)."""
    from dataclasses import replace

    from ml.data.calendar import check_declared
    from ml.data.fingerprint import labelled
    from ml.data.store import ingest as run_ingest

    options = replace(_options(tz, "report"), periods_per_year=check_declared(periods_per_year, "--periods-per-year"))
    result = run_ingest(sources, to, options)
    manifest = result.manifest
    verb = "wrote" if result.written else "unchanged:"
    rows = sum(s.rows for s in manifest.symbols.values())
    typer.echo(f"{verb} {Path(to) if '://' not in to else to} ({rows} bars, {len(manifest.symbols)} symbol(s))")
    typer.echo(labelled(manifest.fingerprint))
