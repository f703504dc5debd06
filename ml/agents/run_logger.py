"""Metrics of a run: one CSV row and TensorBoard scalars per report, and a live rich progress bar."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class MetricsRow(Protocol):
    """A NamedTuple of numbers with at least these two fields."""

    @property
    def global_step(self) -> int: ...

    @property
    def mean_return(self) -> float: ...

    def _asdict(self) -> dict[str, Any]: ...


class SupportsAddScalar(Protocol):
    def add_scalar(self, tag: str, scalar_value: float, global_step: int) -> None: ...

    def close(self) -> None: ...


class RunLogger:
    """Writes ``metrics.csv`` and TensorBoard events under ``run_dir`` (nothing when it is None)."""

    def __init__(self, run_dir: Path | None, total_steps: int, show_progress: bool, initial_step: int = 0) -> None:
        self.run_dir = run_dir
        self._csv_file: IO[str] | None = None
        self._csv: csv.DictWriter[str] | None = None
        self._tb: SupportsAddScalar | None = None
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            from torch.utils.tensorboard import SummaryWriter  # slow import: only for runs that write files

            self._tb = SummaryWriter(log_dir=str(run_dir))
        self._progress: Progress | None = None
        if show_progress:
            self._progress = Progress(
                TextColumn("[bold]training"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("steps  mean return {task.fields[mean_return]}"),
                TimeElapsedColumn(),
            )
            self._task = self._progress.add_task("train", total=total_steps, completed=initial_step, mean_return="-")
            self._progress.start()

    def log(self, row: MetricsRow) -> None:
        values = row._asdict()
        if self.run_dir is not None:
            if self._csv is None:
                self._csv_file = (self.run_dir / "metrics.csv").open("w", newline="")
                self._csv = csv.DictWriter(self._csv_file, fieldnames=list(values))
                self._csv.writeheader()
            self._csv.writerow(values)
            assert self._csv_file is not None
            self._csv_file.flush()
        if self._tb is not None:
            for key, value in values.items():
                if key != "global_step" and isinstance(value, int | float) and math.isfinite(value):
                    self._tb.add_scalar(f"train/{key}", float(value), row.global_step)
        self.progress(row.global_step, row.mean_return)

    def progress(self, step: int, mean_return: float) -> None:
        if self._progress is not None:
            shown = f"{mean_return:.2f}" if math.isfinite(mean_return) else "-"
            self._progress.update(self._task, completed=step, mean_return=shown)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._csv_file is not None:
            self._csv_file.close()
            self._csv_file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
