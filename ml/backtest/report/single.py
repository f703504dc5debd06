"""The report page of one backtest result: summary tiles, charts, metrics, trades and configuration."""

from __future__ import annotations

import math

import pandas as pd

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
from ml.backtest.report.page import page
from ml.backtest.report.series import periods_per_year, rolling_window
from ml.backtest.result import BacktestResult

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
    "turnover": "traded value over the average gross book, per bar",
    "turnover_annual": "turnover per bar, annualised",
    "trade_win_rate": "share of closed trades with a positive PnL",
    "n_trades": "round trips, open ones included",
}


def _confidence(result: BacktestResult) -> float:
    level = result.config.get("backtest", {}).get("confidence", 0.95)
    return float(level) if isinstance(level, int | float) else 0.95


def metrics_table(result: BacktestResult) -> str:
    rows = []
    low, high = result.sharpe_ci
    for name, value in result.metrics.items():
        shown = fmt_number(value, percent=name in PERCENT_METRICS)
        if name == "sharpe":
            ci = f"{_confidence(result):.0%} CI [{fmt_number(low)}, {fmt_number(high)}]"
            shown += f' <span class="ci" data-ci="sharpe">{esc(ci)}</span>'
        rows.append((f"<code>{esc(name)}</code>", shown, esc(METRIC_NOTES.get(name, ""))))
    if "sharpe" not in result.metrics:
        ci = f"[{fmt_number(low)}, {fmt_number(high)}]"
        rows.append(("<code>sharpe_ci</code>", f'<span class="ci" data-ci="sharpe">{esc(ci)}</span>', ""))
    for name in ("commission", "slippage", "borrow"):
        rows.append((f"<code>cost_{name}</code>", fmt_number(float(getattr(result.costs, name))), "total, currency"))
    rows.append(("<code>cost_total</code>", fmt_number(float(result.costs.total)), "total, currency"))
    return table(["metric", "value", "meaning"], rows, "metrics")


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
        more = f'<p class="note">First {MAX_TRADE_ROWS:,} of {len(trades):,} trades; trades.parquet holds all.</p>'
    return more + table([str(c) for c in shown.columns], rows, "trades sortable")


def render_result(result: BacktestResult) -> tuple[str, dict[str, bytes]]:
    """The report page and its charts (name -> PNG bytes)."""
    charts = result_charts(result)
    ppy = periods_per_year(result)
    window = rolling_window(len(result.timeseries), ppy)
    m = result.metrics
    low, high = result.sharpe_ci
    tiles = "".join(
        [
            tile("total return", fmt_number(m.get("total_return", float("nan")), percent=True)),
            tile("CAGR", fmt_number(m.get("cagr", float("nan")), percent=True)),
            tile("Sharpe", f"{fmt_number(m.get('sharpe', float('nan')))}"
                  f'<span class="ci">[{fmt_number(low)}, {fmt_number(high)}]</span>'),
            tile("max drawdown", fmt_number(m.get("max_drawdown", float("nan")), percent=True)),
            tile("trades", fmt_number(len(result.trades))),
        ]
    )  # fmt: skip
    identity = kv_table(
        [
            ("policy", esc(result.policy)),
            ("policy kind", esc(result.policy_kind)),
            ("dataset", esc(result.dataset)),
            ("period", f"{esc(result.period)} ({esc(result.period_start)} → {esc(result.period_end)})"),
            ("bars", fmt_number(len(result.timeseries))),
            ("dataset fingerprint", f"<code>{esc(result.dataset_fingerprint)}</code>"),
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
    sections = [
        section("summary", "Summary", f'<div class="tiles">{tiles}</div>{identity}'),
        section("equity", "Equity against the benchmark", equity,
                 "Strategy equity and the benchmark (buy-and-hold of the same market under the same costs). "
                 "Log scale shows equal percentage moves as equal heights."),
        section("drawdown", "Underwater drawdown", img("drawdown", charts["drawdown"], "drawdown"),
                 "How far equity sits below its running peak at each bar."),
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
        section("metrics", "Metrics", metrics_table(result),
                 f"The Sharpe interval is a bootstrap {_confidence(result):.0%} confidence interval: "
                 "a range that wide is what resampling the same returns gives."),
        section("trades", "Trades", trades_table(result.trades),
                 "Round trips; an open trade is valued at the last close. Click a header to sort."),
        section("config", "Configuration", config_block(result.config)),
    ]  # fmt: skip
    title = f"Backtest: {result.policy} on {result.dataset} ({result.period})"
    return page(title, sections), charts
