"""The report page of a batch: leaderboard with intervals, the deflated Sharpe explained, failed cells."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ml.backtest.overfitting import describe
from ml.backtest.report.charts import STRATEGY_COLOR, png
from ml.backtest.report.load import REPORT, Batch
from ml.backtest.report.markup import PERCENT_METRICS, config_block, esc, fmt_number, img, section, table, tile
from ml.backtest.report.page import Scope, page, span_text
from ml.backtest.result import SUMMARY
from ml.data import storage

MAX_BAR_CELLS = 40  # cells drawn in the batch comparison chart; the table lists all of them
LABEL_PART_CHARS = 32


def _short(text: str) -> str:
    """Checkpoint paths and store locations are long; a chart label keeps their informative tail."""
    return text if len(text) <= LABEL_PART_CHARS else "…" + text[-(LABEL_PART_CHARS - 1) :]


def _cell_label(row: Mapping[Any, Any]) -> str:
    dataset, period = _short(str(row.get("dataset", ""))), row.get("period", "")
    return f"#{int(row['cell'])} {_short(str(row['policy']))} · {dataset} · {period}"


def chart_batch(batch: Batch) -> bytes:
    ok = batch.leaderboard[batch.leaderboard["status"] == "ok"].head(MAX_BAR_CELLS)
    ok = ok[np.isfinite(ok[batch.metric].astype(float))] if batch.metric in ok.columns else ok.iloc[0:0]
    values = ok[batch.metric].astype(float).to_numpy() if len(ok) else np.zeros(0)
    labels = [_cell_label(r) for r in ok.to_dict("records")]

    def draw(fig: Any, ax: Any) -> None:
        positions = np.arange(len(values))[::-1]
        colors = [STRATEGY_COLOR if v >= 0 else "#c0392b" for v in values]
        ax.barh(positions, values, color=colors, alpha=0.85)
        if batch.metric == "sharpe" and {"sharpe_ci_low", "sharpe_ci_high"} <= set(ok.columns):
            low = values - ok["sharpe_ci_low"].astype(float).to_numpy()
            high = ok["sharpe_ci_high"].astype(float).to_numpy() - values
            ax.errorbar(values, positions, xerr=np.vstack([low, high]), fmt="none", ecolor="black", lw=0.8)
        ax.set_yticks(positions, labels=labels, fontsize=8)
        ax.axvline(0.0, color="black", lw=0.6)
        ax.grid(True, axis="x", alpha=0.3)
        if not len(values):
            ax.text(0.5, 0.5, "no successful cell", ha="center", va="center", transform=ax.transAxes)
        ci = " with bootstrap confidence intervals" if batch.metric == "sharpe" else ""
        ax.set_title(f"Cells by {batch.metric}{ci}", loc="left", fontsize=11)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)

    return png(draw, (10.0, max(2.2, 0.32 * len(values) + 1.2)))


def deflated_note(batch: Batch) -> str:
    value = batch.deflated_sharpe
    if not math.isfinite(value):
        verdict = "No cell succeeded, so there is no best cell to judge."
    elif value >= 0.95:
        verdict = (
            f"At {value:.1%}, the best cell's Sharpe is unlikely to be only the luck of picking the best of "
            f"{batch.trials} trials."
        )
    else:
        verdict = (
            f"At {value:.1%} (below 95%), the best cell's Sharpe could well be luck: among {batch.trials} trials, "
            "the best one looks this good often enough even when no strategy has an edge. Treat its rank as "
            "unconfirmed and test it out of sample."
        )
    counted = batch.deflation
    if "n_trials" in counted:
        over = (
            f" with N = <span data-n-trials>{fmt_number(counted['n_trials'])}</span> trials "
            f"({fmt_number(counted['tuning_trials'])} tuning trials + {fmt_number(counted['cells'])} cells) and "
            f"per-bar Sharpe variance {counted['trial_sharpe_variance']:.3g} ({esc(counted['variance_from'])}).</p>"
        )
    else:
        over = f" over {fmt_number(batch.trials)} successful trial(s).</p>"
    return (
        f'<p class="dsr"><strong>Deflated Sharpe ratio: <span data-dsr>{fmt_number(value, percent=True)}</span>'
        f"</strong>{over}"
        f'<p class="pbo">Probability of backtest overfitting of the cells (CSCV, Bailey, Borwein, López de Prado '
        f"and Zhu): {esc(describe(batch.overfitting))}.</p>"
        "<p>Running many backtests and keeping the best inflates its Sharpe: the maximum of N noisy estimates is "
        "high even when every true Sharpe is zero. The deflated Sharpe ratio (Bailey and López de Prado) is the "
        "probability that the best cell's true Sharpe is above zero after accounting for the number of trials, "
        "the spread of their Sharpe ratios, the length of the backtest and the skew and kurtosis of its returns."
        f"</p><p>{esc(verdict)}</p>"
    )


LEADERBOARD_COLUMNS = ("rank", "cell", "policy", "dataset", "period", "env", "params", "status")


def _cell_link(batch: Batch, cell: int, reports: set[int]) -> str:
    folder = f"cells/{cell:04d}"
    if cell in reports:
        return f'<a href="{esc(folder)}/{REPORT}">report</a>'
    if cell in batch.cell_dirs:
        return f'<span class="hint">rlops report {esc(storage.join(batch.location, "cells", f"{cell:04d}"))}</span>'
    return "–"


def leaderboard_table(batch: Batch, reports: set[int]) -> str:
    board = batch.leaderboard
    metric_columns = [
        c for c in (batch.metric, "sharpe", "total_return", "max_drawdown", "n_trades") if c in board.columns
    ]
    metric_columns = list(dict.fromkeys(metric_columns))
    columns = [c for c in LEADERBOARD_COLUMNS if c in board.columns] + metric_columns
    has_ci = {"sharpe_ci_low", "sharpe_ci_high"} <= set(board.columns)
    rows = []
    for record in board.to_dict("records"):
        row = []
        for column in columns:
            value = record[column]
            if column in metric_columns:
                row.append(fmt_number(value, percent=column in PERCENT_METRICS))
            else:
                row.append(esc(value))
        if has_ci:
            ci = f"[{fmt_number(record['sharpe_ci_low'])}, {fmt_number(record['sharpe_ci_high'])}]"
            row.append(ci if record["status"] == "ok" else "")
        row.append(esc(record["error"]) if record["status"] != "ok" else "")
        row.append(_cell_link(batch, int(record["cell"]), reports))
        rows.append(row)
    header = columns + (["sharpe CI"] if has_ci else []) + ["error", "cell report"]
    return table(header, rows, "leaderboard sortable")


def failed_table(batch: Batch) -> str:
    failed = batch.leaderboard[batch.leaderboard["status"] != "ok"]
    if failed.empty:
        return '<p class="empty">Every cell succeeded.</p>'
    rows = [
        (esc(int(r["cell"])), esc(r["policy"]), esc(r.get("dataset", "")), esc(r.get("period", "")),
         esc(r.get("params", "")), f'<code class="error">{esc(r["error"])}</code>')
        for r in failed.to_dict("records")
    ]  # fmt: skip
    return table(["cell", "policy", "dataset", "period", "params", "error"], rows, "failed")


def batch_scope(batch: Batch) -> Scope:
    """The periods the batch's cells were scored on, with dates read from one saved cell per period, and whether
    they are in-sample (a cell's own `in_sample` flag where it has one; otherwise only the train split is)."""
    board = batch.leaderboard
    periods = [str(p) for p in dict.fromkeys(board["period"])] if "period" in board.columns else []
    saved = set(batch.cell_dirs)
    parts, flags = [], set()
    for period in periods:
        cells = [int(c) for c in board.loc[board["period"].astype(str) == period, "cell"] if int(c) in saved]
        summary: dict[str, Any] = {}
        if cells:
            where = storage.join(batch.location, "cells", f"{cells[0]:04d}", SUMMARY)
            try:
                summary = json.loads(storage.read_bytes(where))
            except (json.JSONDecodeError, UnicodeDecodeError):
                summary = {}  # load_batch found the file; an unreadable one only costs the dates here
        dates = summary.get("period_start"), summary.get("period_end")
        parts.append(f"{period} period" + (f" {span_text(*dates)}" if all(dates) else ""))
        flag = summary.get("in_sample")
        flags.add(bool(flag) if isinstance(flag, bool) else period == "train")
    if "in_sample" in board.columns:
        flags = {bool(v) for v in board["in_sample"]}
    sample = flags.pop() if len(flags) == 1 else (None if flags else False)
    return Scope("; ".join(parts) or "period not recorded", sample)


def render_batch(batch: Batch, reports: set[int] | None = None) -> tuple[str, dict[str, bytes]]:
    charts = {"leaderboard": chart_batch(batch)}
    board = batch.leaderboard
    ok = int((board["status"] == "ok").sum())
    tiles = "".join(
        [
            tile("cells", fmt_number(len(board))),
            tile("succeeded", fmt_number(ok)),
            tile("failed", fmt_number(len(board) - ok)),
            tile("ranked by", f"<code>{esc(batch.metric)}</code>"),
            tile("deflated Sharpe", fmt_number(batch.deflated_sharpe, percent=True)),
        ]
    )
    shown = min(ok, MAX_BAR_CELLS)
    sections = [
        section("summary", "Summary", f'<div class="tiles">{tiles}</div>'),
        section("deflated-sharpe", "Is the best of N trials luck?", deflated_note(batch)),
        section("leaderboard", "Leaderboard", leaderboard_table(batch, reports or set()),
                 f"Ranked by {esc(batch.metric)}, failed cells last. Click a header to sort."),
        section("comparison", "Cells compared", img("leaderboard", charts["leaderboard"], "cells by metric"),
                 f"The {shown} best successful cell(s) by {esc(batch.metric)}."),
        section("failed", "Failed cells", failed_table(batch),
                 "A failing cell is recorded with its error and never stops the batch."),
        section("config", "Grid", config_block(batch.grid) if batch.grid is not None
                 else '<p class="empty">grid.json is missing.</p>'),
    ]  # fmt: skip
    return page(f"Batch backtest: {len(board)} cells ranked by {batch.metric}", sections, batch_scope(batch)), charts
