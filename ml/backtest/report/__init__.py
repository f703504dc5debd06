"""Self-contained HTML reports for one backtest or a batch, with every chart also written as a PNG.

`write_report(run_dir)` reads what `BacktestResult.save` or `BatchResult.save` wrote (a folder or an `s3://`
prefix) and writes `report.html` and `charts/*.png` next to it. The HTML needs nothing from the network: CSS and
script are inline and the charts are the same PNGs embedded as data URIs, so the file can be mailed or archived.

Modules: `load` (reading results and batches), `series` (what the charts and tables compute), `charts` (PNGs),
`markup` (HTML building blocks), `page` (the shell: CSS, scripts, header), `single` and `batch` (the two pages).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ml.backtest.report.batch import render_batch
from ml.backtest.report.load import BATCH_SUMMARY, CHARTS, REPORT, load_batch, load_result
from ml.backtest.report.single import render_result
from ml.backtest.result import SUMMARY
from ml.data import storage
from rlops_core.errors import RlopsError


def write_report(run_dir: str, cells: bool = False) -> str:
    """Write `report.html` (+ `charts/*.png`) into `run_dir`, a single result or a batch; returns the HTML's path.

    With `cells`, a batch's per-cell results get their own reports first, and the leaderboard links to them.
    """
    location = run_dir.rstrip("/") if storage.is_s3(run_dir) else run_dir
    if not storage.is_s3(location) and not Path(location).is_dir():
        raise RlopsError(f"{run_dir}: " + ("not a folder" if Path(location).exists() else "no such folder"))
    if storage.exists(storage.join(location, BATCH_SUMMARY)):
        return _write_batch(location, cells)
    if storage.exists(storage.join(location, SUMMARY)):
        return write_result_report(location)
    raise RlopsError(
        f"{run_dir} holds neither a backtest result ({SUMMARY}) nor a batch ({BATCH_SUMMARY}); "
        "point at a folder written by `rlops backtest run` or `rlops backtest batch`"
    )


def write_result_report(location: str) -> str:
    """The report of the single backtest result at `location`; returns the HTML's path."""
    result = load_result(location)
    page, charts = render_result(result)
    return _write(location, page, charts)


def _write_batch(location: str, cells: bool) -> str:
    batch = load_batch(location)
    if cells:
        for index in batch.cell_dirs:
            write_result_report(storage.join(location, "cells", f"{index:04d}"))
    reports = {i for i in batch.cell_dirs if storage.exists(storage.join(location, "cells", f"{i:04d}", REPORT))}
    page, charts = render_batch(batch, reports)
    return _write(location, page, charts)


def _write(location: str, page: str, charts: Mapping[str, bytes]) -> str:
    for name, png in charts.items():
        storage.write_bytes(storage.join(location, CHARTS, f"{name}.png"), png)
    target = storage.join(location, REPORT)
    storage.write_bytes(target, page.encode())
    return target
