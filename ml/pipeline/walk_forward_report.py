"""The walk-forward's part of the research report: per-fold and overall metrics in one table, the stitched curve."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ml.backtest.report.charts import png, style
from ml.backtest.report.markup import Section, esc, fmt_number, img, section, table
from ml.data import storage
from ml.pipeline.walk_forward import EQUITY_FILE, FOLDER

CHART = "walk_forward_equity"


def walk_forward_section(location: str, walked: Mapping[str, Any]) -> tuple[Section, dict[str, bytes]]:
    """The section for the backtest stage's `walk_forward` result; `location` holds its `walk_forward/` folder."""
    equity = pd.read_csv(io.BytesIO(storage.read_bytes(storage.join(location, FOLDER, EQUITY_FILE))),
                         index_col="timestamp", parse_dates=["timestamp"])  # fmt: skip
    chart = chart_stitched(equity.drop(columns="fold"))
    rows = [
        [esc(f"fold {int(r['fold']) + 1}"), esc(r["policy"]), esc(f"{r['train_start'][:10]} .. {r['train_end'][:10]}"),
         esc(f"{r['test_start'][:10]} .. {r['test_end'][:10]}"), fmt_number(float(r["sharpe"])),
         fmt_number(float(r["total_return"]), percent=True), fmt_number(float(r["max_drawdown"]), percent=True)]
        for r in walked["per_fold"]
    ]  # fmt: skip
    rows += [
        [esc("stitched"), esc(r["policy"]), "", "", fmt_number(float(r["sharpe"])),
         fmt_number(float(r["total_return"]), percent=True), fmt_number(float(r["max_drawdown"]), percent=True)]
        for r in walked["overall"]
    ]  # fmt: skip
    body = table(["fold", "policy", "trained on", "tested on", "Sharpe", "total return", "max drawdown"], rows,
                 "walk-forward") + img(CHART, chart, "stitched out-of-sample equity")  # fmt: skip
    note = (
        f"The test split in {int(walked['folds'])} folds: before each, every agent was refitted on the bars up to "
        f"{int(walked['embargo'])} bars (the embargo) before the fold and scored on the fold alone. The stitched rows "
        "and curve chain the folds' returns; each fold starts flat with the same cash."
    )
    return section("walk-forward", "Walk-forward", body, note), {CHART: chart}


def chart_stitched(equity: pd.DataFrame) -> bytes:
    def draw(fig: Any, ax: Any) -> None:
        for policy in equity.columns:
            curve = equity[policy]
            ax.plot(curve.index, curve / curve.iloc[0], label=policy, lw=1.2)
        ax.axhline(1.0, color="black", lw=0.5)
        ax.legend(loc="upper left", frameon=False, fontsize=8, ncol=3)
        style(ax, "Walk-forward: stitched out-of-sample growth of 1")

    return png(draw)
