"""The report page of one backtest result: summary tiles, charts, metrics, trades and configuration."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ml.backtest.metrics import compute_metrics
from ml.backtest.report.charts import result_charts
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
from ml.backtest.report.page import Scope, page, span_text, stamp_text
from ml.backtest.report.series import (
    bench_returns,
    in_sample,
    periods_per_year,
    rolling_window,
    with_benchmark,
    worst_drawdowns,
)
from ml.backtest.result import BacktestResult

WORST_DRAWDOWNS = 5
# Metrics of the return series alone: the benchmark has one of each. The rest (alpha and beta against itself,
# exposure, turnover, trades) would be trivial or describe a book the report does not have.
BENCHMARK_METRICS = frozenset(
    {
        "n_periods", "periods_per_year", "total_return", "cagr", "annual_volatility", "sharpe", "sortino", "calmar",
        "max_drawdown", "max_drawdown_duration", "longest_drawdown_duration", "win_rate", "profit_factor", "avg_win",
        "avg_loss", "var_95", "cvar_95", "skew", "kurtosis", "tail_ratio",
    }
)  # fmt: skip
MAX_TRADE_ROWS = 2000  # beyond this the page gets slow to open; trades.parquet keeps every row
METRIC_NOTES = {
    "n_periods": "bars scored (the starting row excluded)",
    "periods_per_year": "bars in a year, which annualises every figure",
    "total_return": "final equity over initial, minus one",
    "cagr": "compound annual growth rate",
    "annual_volatility": "standard deviation of bar returns, annualised",
    "sharpe": "annualised mean excess return over its volatility",
    "sortino": "annualised mean excess return over downside deviation",
    "calmar": "CAGR over the absolute max drawdown",
    "max_drawdown": "deepest fall from a running peak",
    "max_drawdown_duration": "bars from the deepest drawdown's peak to recovery (or the end)",
    "longest_drawdown_duration": "bars of the longest drawdown of any depth",
    "win_rate": "share of bars with a positive return",
    "profit_factor": "sum of gains over sum of losses, per bar",
    "avg_win": "mean return of winning bars",
    "avg_loss": "mean return of losing bars",
    "var_95": "historical 95% value at risk (a bar return)",
    "cvar_95": "mean of the 5% worst bar returns",
    "skew": "skewness of bar returns",
    "kurtosis": "excess kurtosis of bar returns",
    "tail_ratio": "95th percentile over the absolute 5th percentile",
    "alpha": "annualised return not explained by the benchmark",
    "beta": "sensitivity to the benchmark's returns",
    "exposure": "share of bars with a position",
    "turnover": "traded value over the average net asset value, per bar",
    "turnover_annual": "net asset values traded in a year",
    "trade_win_rate": "share of closed trades with a positive PnL",
    "n_trades": "closed round trips (a trade still open at the end is listed, not counted)",
}


def _confidence(result: BacktestResult) -> float:
    level = result.config.get("backtest", {}).get("confidence", 0.95)
    return float(level) if isinstance(level, int | float) else 0.95


def benchmark_metrics(result: BacktestResult, ppy: float) -> dict[str, float] | None:
    """The benchmark's metrics, computed as the strategy's are (same annualisation and risk-free rate)."""
    bench = bench_returns(result.timeseries)
    if bench is None:
        return None
    returns = bench.iloc[1:].to_numpy(dtype=float)
    if not np.isfinite(returns).all():  # a benchmark wiped out to zero has no return after it
        return None
    rate = result.config.get("backtest", {}).get("risk_free", 0.0)
    rate = float(rate) if isinstance(rate, int | float) else 0.0
    values = compute_metrics(returns, ppy, risk_free=rate).as_dict()
    return {name: float(value) for name, value in values.items() if name in BENCHMARK_METRICS}


def metrics_table(result: BacktestResult, bench: Mapping[str, float] | None = None) -> str:
    """The strategy's metrics, with the benchmark's beside them when it has one."""
    rows = []
    low, high = result.sharpe_ci

    def row(name: str, shown: str, note: str) -> tuple[str, ...]:
        if bench is None:
            return (f"<code>{esc(name)}</code>", shown, note)
        theirs = fmt_number(bench[name], percent=name in PERCENT_METRICS) if name in bench else "–"
        return (f"<code>{esc(name)}</code>", shown, f'<span data-benchmark="{esc(name)}">{theirs}</span>', note)

    for name, value in result.metrics.items():
        shown = fmt_number(value, percent=name in PERCENT_METRICS)
        if name == "sharpe":
            ci = f"{_confidence(result):.0%} CI [{fmt_number(low)}, {fmt_number(high)}]"
            shown += f' <span class="ci" data-ci="sharpe">{esc(ci)}</span>'
        rows.append(row(name, shown, esc(METRIC_NOTES.get(name, ""))))
    if "sharpe" not in result.metrics:
        ci = f"[{fmt_number(low)}, {fmt_number(high)}]"
        rows.append(row("sharpe_ci", f'<span class="ci" data-ci="sharpe">{esc(ci)}</span>', ""))
    for name in ("commission", "slippage", "borrow"):
        rows.append(row(f"cost_{name}", fmt_number(float(getattr(result.costs, name))), "total, currency"))
    rows.append(row("cost_total", fmt_number(float(result.costs.total)), "total, currency"))
    header = ["metric", "strategy", "benchmark", "meaning"] if bench is not None else ["metric", "value", "meaning"]
    return table(header, rows, "metrics")


def drawdowns_table(equity: pd.Series) -> str:
    worst = worst_drawdowns(equity, WORST_DRAWDOWNS)
    if worst.empty:
        return '<p class="empty">No drawdown: equity never fell below its running peak.</p>'
    rows = [
        (esc(stamp_text(r["start"])), esc(stamp_text(r["trough"])),
         esc(stamp_text(r["recovery"])) if not pd.isna(r["recovery"]) else "not recovered",
         fmt_number(float(r["depth"]), percent=True), fmt_number(int(r["bars"])))
        for r in worst.to_dict("records")
    ]  # fmt: skip
    return table(["start (peak)", "trough", "recovery", "depth", "length (bars)"], rows, "drawdowns")


def trade_counts(result: BacktestResult) -> tuple[int, int]:
    """(closed round trips, trades still open at the end): the first is `n_trades` wherever the metrics carry it,
    so the tile, the metrics table and the trades section all show the number the leaderboards rank."""
    trades = result.trades
    still_open = int(trades["open"].astype(bool).sum()) if "open" in trades.columns else 0
    counted = result.metrics.get("n_trades")
    closed = int(counted) if isinstance(counted, int | float) and math.isfinite(counted) else len(trades) - still_open
    return closed, still_open


def trades_table(trades: pd.DataFrame) -> str:
    if trades.empty:
        return '<p class="empty">No trades: the policy never held a position.</p>'
    shown = trades.head(MAX_TRADE_ROWS)
    percent = {"return"}
    rows = []
    for record in shown.to_dict("records"):
        row = []
        for column in shown.columns:
            value = record[column]
            if isinstance(value, pd.Timestamp):
                row.append(esc(value.isoformat()))
            elif value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
                row.append("–")
            else:
                row.append(fmt_number(value, percent=column in percent))
        rows.append(row)
    more = ""
    if len(trades) > MAX_TRADE_ROWS:
        more = f'<p class="note">First {MAX_TRADE_ROWS:,} of {len(trades):,} rows; trades.parquet holds all.</p>'
    return more + table([str(c) for c in shown.columns], rows, "trades sortable")


def result_scope(result: BacktestResult) -> Scope:
    return Scope(f"{result.period} period {span_text(result.period_start, result.period_end)}", in_sample(result))


def render_result(result: BacktestResult) -> tuple[str, dict[str, bytes]]:
    """The report page and its charts (name -> PNG bytes)."""
    result, bench_source = with_benchmark(result)
    charts = result_charts(result)
    ppy = periods_per_year(result)
    window = rolling_window(len(result.timeseries), ppy)
    bench = benchmark_metrics(result, ppy)
    m = result.metrics
    low, high = result.sharpe_ci
    closed, still_open = trade_counts(result)
    opened = f'<span class="ci">+{fmt_number(still_open)} open</span>' if still_open else ""
    tiles = "".join(
        [
            tile("total return", fmt_number(m.get("total_return", float("nan")), percent=True)),
            tile("CAGR", fmt_number(m.get("cagr", float("nan")), percent=True)),
            tile("Sharpe", f"{fmt_number(m.get('sharpe', float('nan')))}"
                  f'<span class="ci">[{fmt_number(low)}, {fmt_number(high)}]</span>'),
            tile("max drawdown", fmt_number(m.get("max_drawdown", float("nan")), percent=True)),
            tile("trades (n_trades)", f'<span data-trades="n_trades">{fmt_number(closed)}</span>{opened}'),
        ]
    )  # fmt: skip
    identity = kv_table(
        [
            ("policy", esc(result.policy)),
            ("policy kind", esc(result.policy_kind)),
            ("dataset", esc(result.dataset)),
            ("period", f"{esc(result.period)} ({esc(result.period_start)} → {esc(result.period_end)})"),
            ("bars", fmt_number(len(result.timeseries))),
            ("benchmark", esc(bench_source or "none")),
            ("data+features fingerprint", f"<code>{esc(result.dataset_fingerprint)}</code>"),
            ("checkpoint sha256", f"<code>{esc(result.checkpoint_sha256 or 'none (not a checkpoint)')}</code>"),
        ]
    )
    toggle = (
        '<div class="toggle" role="group" aria-label="equity scale">'
        '<button type="button" data-scale="linear" aria-pressed="true">linear</button>'
        '<button type="button" data-scale="log" aria-pressed="false">log</button></div>'
    )
    equity = (
        toggle
        + '<div class="scale" data-scale-view="linear">'
        + img("equity", charts["equity"], "equity, linear scale")
        + "</div>"
        + '<div class="scale" data-scale-view="log" hidden>'
        + img("equity_log", charts["equity_log"], "equity, log scale")
        + "</div>"
    )
    benchmark_note = (
        f"Strategy equity and the benchmark ({esc(bench_source)})." if bench_source else
        "This result carries no benchmark (neither a benchmark_equity column nor close_&lt;symbol&gt; prices), "
        "so none is shown."
    )  # fmt: skip
    trades_note = (
        f"{closed:,} closed round trip(s), the <code>n_trades</code> the metrics and leaderboards count"
        + (f", and {still_open:,} still open at the end, valued at the last close" if still_open else "")
        + ". Click a header to sort."
    )
    sections = [
        section("summary", "Summary", f'<div class="tiles">{tiles}</div>{identity}'),
        section("equity", "Equity against the benchmark", equity,
                 f"{benchmark_note} Log scale shows equal percentage moves as equal heights."),
        section("drawdown", "Underwater drawdown", img("drawdown", charts["drawdown"], "drawdown"),
                 "How far equity sits below its running peak at each bar."),
        section("worst-drawdowns", "Worst drawdowns", drawdowns_table(result.equity),
                 f"The {WORST_DRAWDOWNS} deepest falls from a running peak; the length runs from the peak to the "
                 "first bar back at or above it, or to the last bar if it never got there."),
        section("rolling", "Rolling Sharpe and volatility",
                 img("rolling_sharpe", charts["rolling_sharpe"], "rolling Sharpe")
                 + img("rolling_volatility", charts["rolling_volatility"], "rolling volatility"),
                 f"Over a trailing window of {window} bars, annualised with {ppy:,.1f} bars a year."),
        section("heatmaps", "Monthly and yearly returns",
                 img("monthly_returns", charts["monthly_returns"], "monthly returns")
                 + img("yearly_returns", charts["yearly_returns"], "yearly returns"),
                 "Compounded returns per calendar month and year (UTC); a partial first or last period "
                 "covers only its bars."),
        section("distribution", "Return distribution",
                 img("return_distribution", charts["return_distribution"], "distribution of returns")),
        section("positions", "Positions", img("positions", charts["positions"], "positions"),
                 "Signed weight of each asset in equity (negative is short), and gross exposure over equity."),
        section("turnover", "Turnover", img("turnover", charts["turnover"], "turnover")),
        section("costs", "Costs", img("costs", charts["costs"], "cumulative costs")),
        section("metrics", "Metrics", metrics_table(result, bench),
                 f"The Sharpe interval is a bootstrap {_confidence(result):.0%} confidence interval: "
                 "a range that wide is what resampling the same returns gives."
                 + (" The benchmark's figures are computed the same way from its returns." if bench else "")),
        section("trades", "Trades", trades_table(result.trades), trades_note),
        section("config", "Configuration", config_block(result.config)),
    ]  # fmt: skip
    title = f"Backtest: {result.policy} on {result.dataset} ({result.period})"
    return page(title, sections, result_scope(result)), charts
