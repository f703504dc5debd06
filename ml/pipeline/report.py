"""The pipeline's research report: what a quant reads to judge the run, from what the stages wrote.

One page: the data and its split (dates, bar counts, fingerprint), each algorithm's tuning leaderboard on the
validation split with the configuration chosen, every policy's test-split equity and drawdown on one chart, the
test leaderboard with its bootstrap intervals, the deflated Sharpe ratio with the N it was deflated by, and a link to
each cell's own report (written here too). It sits where the report stage's copy of the backtest batch is, so the
links are relative and the folder can be archived or mailed whole.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.backtest.overfitting import describe
from ml.backtest.report import write_result_report
from ml.backtest.report.charts import pct_axis, png, pyplot
from ml.backtest.report.load import CHARTS, REPORT, Batch, load_batch, load_result
from ml.backtest.report.markup import (
    PERCENT_METRICS,
    config_block,
    esc,
    fmt_number,
    img,
    kv_table,
    section,
    table,
    tile,
)
from ml.backtest.report.page import Scope, page, span_text
from ml.backtest.report.series import drawdown, in_sample
from ml.backtest.result import BacktestResult
from ml.data import storage
from ml.pipeline.config import PipelineConfig
from rlops_core.errors import RlopsError

PARTS = ("train", "validation", "test")
PART_USE = {
    "train": "tuning trials learn here; the final refit learns on train + validation",
    "validation": "scores every tuning trial: each algorithm's configuration is chosen here",
    "test": "scored once, after every choice was made: the leaderboard below",
}
MAX_CONFIG_COLUMNS = 8  # searched hyperparameters shown per tuning table; the chosen config block has them all
EQUITY_CHART = "test_equity"


@dataclass(frozen=True)
class SplitPart:
    name: str
    start: str
    end: str
    bars: int


@dataclass(frozen=True)
class Tuning:
    algo: str
    board: pd.DataFrame  # one row per trial, best validation score first
    score: str  # the column holding each trial's validation score
    chosen: Mapping[str, Any]  # what best_config.yaml holds: the configuration the refit used
    experiment: str


@dataclass(frozen=True)
class Research:
    config: PipelineConfig
    data: Mapping[str, Any]  # the data stage's result
    split: tuple[SplitPart, ...]
    tuning: tuple[Tuning, ...]
    batch: Batch
    names: Mapping[int, str]  # cell -> the policy's short name (the algorithm, or the baseline)
    results: Mapping[int, BacktestResult]  # cell -> its test-split result
    deflated_sharpe: float
    n_trials: int
    n_counts_tuning: bool  # whether N counts the tuning trials before the cells, or only the cells
    n_parts: tuple[int, int] | None  # (tuning trials, cells) where the batch recorded how N was made up
    overfitting: Mapping[str, Any]  # the cells' PBO, or why there is none
    reports: frozenset[int]  # cells whose own report exists next to this one
    walk_forward: Mapping[str, Any] | None = None  # the backtest stage's walk-forward result, when it ran one
    n_source: str | None = None  # where the counted tuning trials came from (the tune stage, per-fold re-tunes)


def write_research_report(location: str, config: PipelineConfig, stages: Mapping[str, Mapping[str, Any]]) -> str:
    """Write `report.html` (+ `charts/`) at `location`, a copy of the backtest stage's output, and a report for each
    cell under `cells/NNNN/`; `stages` maps data, tune, train and backtest to their stage.json results."""
    batch = load_batch(location)
    for cell in batch.cell_dirs:
        write_result_report(storage.join(location, "cells", f"{cell:04d}"))
    research = gather(location, config, stages, batch)
    text, charts = render_research(research)
    for name, image in charts.items():
        storage.write_bytes(storage.join(location, CHARTS, f"{name}.png"), image)
    target = storage.join(location, REPORT)
    storage.write_bytes(target, text.encode())
    return target


def gather(location: str, config: PipelineConfig, stages: Mapping[str, Mapping[str, Any]], batch: Batch) -> Research:
    missing = [name for name in ("data", "tune", "train", "backtest") if name not in stages]
    if missing:
        raise RlopsError(f"research report: the result of stage(s) {', '.join(missing)} is missing")
    results = {cell: load_result(storage.join(location, "cells", f"{cell:04d}")) for cell in batch.cell_dirs}
    checkpoints = {str(item["checkpoint"]): algo for algo, item in stages["train"].items()}
    names = {
        int(row["cell"]): checkpoints.get(str(row["policy"]), str(row["policy"]).removeprefix("baseline:"))
        for row in batch.leaderboard.to_dict("records")
    }
    backtest = stages["backtest"]
    # N as the backtest stage counted it, else as the batch recorded it, else the batch's own cells.
    deflation = dict(backtest.get("deflation") or batch.deflation or {})
    counted = backtest.get("n_trials", deflation.get("n_trials"))
    tuned, cells = deflation.get("tuning_trials"), deflation.get("cells")
    return Research(
        config=config,
        data=stages["data"],
        split=split_parts(str(stages["data"]["store"]), config, results.values()),
        tuning=tuple(tuning_of(algo, outcome) for algo, outcome in stages["tune"].items()),
        batch=batch,
        names=names,
        results=results,
        deflated_sharpe=float(backtest["deflated_sharpe"]),
        n_trials=int(counted if isinstance(counted, int | float) else backtest["trials"]),
        n_counts_tuning=isinstance(counted, int | float),
        n_parts=(tuned, cells) if isinstance(tuned, int) and isinstance(cells, int) else None,
        overfitting=dict(backtest.get("overfitting") or batch.overfitting or {}),
        reports=frozenset(
            c for c in batch.cell_dirs if storage.exists(storage.join(location, "cells", f"{c:04d}", REPORT))
        ),
        walk_forward=backtest.get("walk_forward"),
        n_source=deflation.get("tuning_source") if tuned else None,
    )


def split_parts(store: str, config: PipelineConfig, results: Iterable[BacktestResult]) -> tuple[SplitPart, ...]:
    """Train, validation and test as the stages cut them: the pipeline's split on the data stage's store, with the
    features the agents were trained with (their warm-up sets the default embargo)."""
    from ml.data.features import FeatureConfig
    from ml.envs.factory import prepared

    features = next((r.config["features"] for r in results if r.checkpoint_sha256 and "features" in r.config), None)
    data = prepared(store, FeatureConfig.from_dict(features) if features else FeatureConfig(), config.split)
    stamps = data.panel.timestamps
    parts = []
    for name in PARTS:
        span = data.split.part(name)
        parts.append(SplitPart(name, stamps[span.start].isoformat(), stamps[span.stop - 1].isoformat(), len(span)))
    return tuple(parts)


def tuning_of(algo: str, outcome: Mapping[str, Any]) -> Tuning:
    experiment = str(outcome["experiment"])
    where = storage.join(experiment, "leaderboard.parquet")
    if not storage.exists(where):
        raise RlopsError(f"research report: {where} is missing; rerun the tune stage with --force")
    board = pd.read_parquet(io.BytesIO(storage.read_bytes(where)))
    scores = [c for c in board.columns if c.startswith("best_")]
    if not scores:
        raise RlopsError(f"research report: {where} has no best_<metric> column of validation scores")
    return Tuning(algo, board, scores[0], outcome["best_config"], experiment)


# --------------------------------------------------------------------------------------------------------------------
# the chart


def chart_test_equity(research: Research) -> bytes:
    """Every policy's test-split equity as growth of 1 (they start with the same cash), drawdowns below."""
    colors = pyplot().get_cmap("tab10").colors

    def draw(_: Any, axes: Any) -> None:
        top, bottom = axes
        for i, (cell, result) in enumerate(sorted(research.results.items())):
            equity = result.equity
            agent = result.checkpoint_sha256 is not None
            look = {"color": colors[i % len(colors)], "lw": 1.6 if agent else 1.0, "ls": "-" if agent else "--"}
            top.plot(equity.index, equity / equity.iloc[0], label=research.names.get(cell, result.policy), **look)
            bottom.plot(equity.index, drawdown(equity), **look)
        top.axhline(1.0, color="black", lw=0.5)
        top.set_title("Test split: growth of 1 (solid: trained agents, dashed: baselines)", loc="left", fontsize=11)
        top.legend(loc="upper left", frameon=False, fontsize=8, ncol=3)
        bottom.set_title("Drawdown from the running peak", loc="left", fontsize=10)
        pct_axis(bottom)
        for ax in (top, bottom):
            ax.grid(True, alpha=0.3)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)

    return png(draw, (10.0, 5.8), nrows=2, ncols=1, sharex=True, height_ratios=(3.0, 1.4))


# --------------------------------------------------------------------------------------------------------------------
# the page


def data_section(research: Research) -> str:
    data = research.data
    facts = kv_table(
        [
            ("dataset", esc(research.config.dataset)),
            ("symbols", esc(", ".join(str(s) for s in data.get("symbols", [])))),
            ("bars", fmt_number(int(data["bars"]))),
            ("dates", esc(span_text(data["start"], data["end"]))),
            ("data fingerprint", f"<code>{esc(data['fingerprint'])}</code>"),
            ("gaps reported", fmt_number(len(data.get("gaps", [])))),
            ("split", f"<code>{esc(json.dumps(research.config.split.to_dict(), sort_keys=True))}</code>"),
        ]
    )
    rows = [
        (f'<span data-part="{esc(p.name)}">{esc(p.name)}</span>', esc(span_text(p.start, p.end)),
         fmt_number(p.bars), esc(PART_USE[p.name]))
        for p in research.split
    ]  # fmt: skip
    return facts + table(["split", "dates", "bars", "what it is for"], rows, "split")


def _plain(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return fmt_number(float(value))
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return fmt_number(int(value))
    return esc(value)


def tuning_table(tuning: Tuning) -> str:
    board = tuning.board
    if board.empty:
        return '<p class="empty">No trial finished.</p>'
    searched = [c for c in board.columns if c.startswith("config/") and board[c].astype(str).nunique() > 1]
    shown = searched[:MAX_CONFIG_COLUMNS]
    extra = ["val_sharpe"] if "val_sharpe" in board.columns and tuning.score != "val_sharpe" else []
    columns = ["rank", "trial", "status", "iterations", tuning.score, *extra, *shown]
    rows = []
    for rank, record in enumerate(board.to_dict("records"), start=1):
        mark = ' <span class="chosen" data-chosen="true">chosen</span>' if rank == 1 else ""
        row = [f"{rank}{mark}", esc(record.get("trial_id", "")), esc(record.get("status", "")),
               _plain(record.get("iterations", ""))]  # fmt: skip
        row += [fmt_number(float(record[c])) for c in (tuning.score, *extra)]
        row += [_plain(record[c]) for c in shown]
        rows.append(row)
    header = [c.removeprefix("config/") for c in columns]
    header[4] = f"{tuning.score.removeprefix('best_')} (validation, best report)"
    # Searched hyperparameters make the table wider than the page: it scrolls on its own, the page does not.
    return f'<div class="wide">{table(header, rows, f"tuning sortable tuning-{tuning.algo}")}</div>'


def tuning_sections(research: Research) -> str:
    parts = []
    for tuning in research.tuning:
        chosen = tuning.chosen.get("config", tuning.chosen)
        parts.append(
            f'<h3 data-algo="{esc(tuning.algo)}">{esc(tuning.algo)}: {len(tuning.board)} trial(s)</h3>'
            + tuning_table(tuning)
            + f'<p class="note">The chosen configuration (<code>{esc(tuning.experiment)}/best_config.yaml</code>), '
            "refit on train + validation before the test:</p>" + config_block(dict(chosen))
        )
    return "".join(parts)


def _cell_report(research: Research, cell: int) -> str:
    if cell in research.reports:
        return f'<a href="cells/{cell:04d}/{REPORT}">report</a>'
    return "–"


def leaderboard_table(research: Research) -> str:
    board = research.batch.leaderboard
    metrics = [c for c in ("sharpe", "total_return", "max_drawdown", "n_trades") if c in board.columns]
    rows = []
    for record in board.to_dict("records"):
        cell = int(record["cell"])
        result = research.results.get(cell)
        kind = result.policy_kind if result is not None else ""
        row = [esc(record["rank"]), esc(research.names.get(cell, record["policy"])), esc(kind)]
        for name in metrics:
            row.append(fmt_number(record[name], percent=name in PERCENT_METRICS))
            if name == "sharpe" and {"sharpe_ci_low", "sharpe_ci_high"} <= set(board.columns):
                row.append(f"[{fmt_number(record['sharpe_ci_low'])}, {fmt_number(record['sharpe_ci_high'])}]")
        row += [esc(record["status"]), _cell_report(research, cell)]
        rows.append(row)
    header = ["rank", "policy", "kind"]
    for name in metrics:
        header.append(name)
        if name == "sharpe" and {"sharpe_ci_low", "sharpe_ci_high"} <= set(board.columns):
            header.append("sharpe CI")
    return table([*header, "status", "cell report"], rows, "leaderboard sortable")


def deflated_section(research: Research) -> str:
    value, n = research.deflated_sharpe, research.n_trials
    if research.n_parts is not None:
        tuned, cells = research.n_parts
        counted = f"{tuned:,} tuning trials plus {cells:,} test cells" + (
            ", so the agents' search counts against the best" if tuned else " (no tuning trials were recorded)"
        )
        if research.n_source:
            counted += f". Tuning trials counted: {research.n_source}"
    elif research.n_counts_tuning:
        counted = "the tuning trials that came before plus the test cells"
    else:
        counted = "the test batch's cells only (the tuning trials before them are not counted)"
    if not math.isfinite(value):
        verdict = "No cell succeeded, so there is no best cell to judge."
    elif value >= 0.95:
        verdict = f"At {value:.1%}, the best Sharpe is unlikely to be only the luck of the best of {n} trials."
    else:
        verdict = (
            f"At {value:.1%} (below 95%), the best Sharpe could well be luck: among {n} trials the best one looks "
            "this good often enough even when no strategy has an edge. Treat its rank as unconfirmed."
        )
    return (
        f'<p class="dsr"><strong>Deflated Sharpe ratio: <span data-dsr>{fmt_number(value, percent=True)}</span>'
        f"</strong> with N = <span data-n-trials>{fmt_number(n)}</span> trials: {esc(counted)}.</p>"
        f'<p class="pbo">Probability of backtest overfitting of the test cells (CSCV, Bailey, Borwein, López de '
        f"Prado and Zhu): {esc(describe(dict(research.overfitting)))}.</p>"
        "<p>Keeping the best of many backtests inflates its Sharpe: the maximum of N noisy estimates is high even "
        "when every true Sharpe is zero. The deflated Sharpe ratio (Bailey and López de Prado) is the probability "
        "that the best cell's true Sharpe is above zero once N, the spread of the trials' Sharpe ratios, the "
        f"backtest's length and its returns' skew and kurtosis are accounted for.</p><p>{esc(verdict)}</p>"
    )


def research_scope(research: Research) -> Scope:
    test = next((p for p in research.split if p.name == "test"), None)
    flags = {in_sample(r) for r in research.results.values()} or {False}
    period = f"test period {span_text(test.start, test.end)}" if test else "test period"
    return Scope(period, flags.pop() if len(flags) == 1 else None)


def render_research(research: Research) -> tuple[str, dict[str, bytes]]:
    charts = {EQUITY_CHART: chart_test_equity(research)}
    board = research.batch.leaderboard
    best = board.iloc[0].to_dict() if len(board) else {}
    best_name = research.names.get(int(best["cell"]), "") if best else ""
    tiles = "".join(
        [
            tile("best on test", esc(best_name or "–")),
            tile("its Sharpe", fmt_number(best.get("sharpe", float("nan")))
                 + (f'<span class="ci">[{fmt_number(best["sharpe_ci_low"])}, {fmt_number(best["sharpe_ci_high"])}]'
                    "</span>" if "sharpe_ci_low" in best else "")),
            tile("deflated Sharpe", fmt_number(research.deflated_sharpe, percent=True)),
            tile("N (trials)", fmt_number(research.n_trials)),
            tile("policies", fmt_number(len(board))),
        ]
    )  # fmt: skip
    sections = [
        section("summary", "Summary", f'<div class="tiles">{tiles}</div>',
                f"{esc(', '.join(research.config.algos))} tuned on validation, refit on train + validation and "
                "scored once on the test split against the baselines."),
        section("data", "Data and its split", data_section(research),
                "Tuning never reads a test bar; the embargo leaves bars unused before validation and test so no "
                "feature window reaches across."),
        section("tuning", "Tuning on the validation split", tuning_sections(research),
                "Every trial, best validation score first; the first is the configuration chosen. Columns show "
                "the hyperparameters that differed between trials."),
        section("equity", "Test-split equity and drawdowns",
                img(EQUITY_CHART, charts[EQUITY_CHART], "test-split equity and drawdowns of every policy")),
        section("leaderboard", "Test leaderboard", leaderboard_table(research),
                "Ranked by Sharpe on the test split, with bootstrap confidence intervals: overlapping intervals mean "
                "the ranking between those policies is not settled. Each cell's own report has its full detail."),
        section("deflated-sharpe", "Is the best of N trials luck?", deflated_section(research)),
        section("config", "Pipeline configuration", config_block(asdict(research.config))),
    ]  # fmt: skip
    if research.walk_forward:
        from ml.pipeline.walk_forward_report import walk_forward_section

        walked, walked_charts = walk_forward_section(research.batch.location, research.walk_forward)
        sections.insert(-2, walked)  # after the test leaderboard, before the deflated Sharpe and the configuration
        charts.update(walked_charts)
    title = f"Research report: {', '.join(research.config.algos)} on {research.config.dataset}"
    return page(title, sections, research_scope(research)), charts
