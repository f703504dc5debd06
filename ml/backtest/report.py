"""Self-contained HTML reports for one backtest or a batch, with every chart also written as a PNG.

`write_report(run_dir)` reads what `BacktestResult.save` or `BatchResult.save` wrote (a folder or an `s3://`
prefix) and writes `report.html` and `charts/*.png` next to it. The HTML needs nothing from the network: CSS and
script are inline and the charts are the same PNGs embedded as data URIs, so the file can be mailed or archived.

The page's script records any error into `#report-status` and, once the page has loaded, counts the charts that
decoded; the headless-browser test reads that element back (docs/reports.md).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.backtest.result import SUMMARY, BacktestResult
from ml.data import storage
from rlops_core.errors import RlopsError

REPORT = "report.html"
CHARTS = "charts"
BATCH_SUMMARY = "batch.json"
LEADERBOARD = "leaderboard.parquet"
MAX_TRADE_ROWS = 2000  # beyond this the page gets slow to open; trades.parquet keeps every row
MAX_BAR_CELLS = 40  # cells drawn in the batch comparison chart; the table lists all of them
MAX_POSITION_LINES = 8

# Fractions shown as percentages; everything else unknown is shown as a plain number.
PERCENT_METRICS = frozenset(
    {
        "total_return", "cagr", "annual_volatility", "max_drawdown", "win_rate", "avg_win", "avg_loss", "var_95",
        "cvar_95", "alpha", "exposure", "turnover", "turnover_annual", "trade_win_rate",
    }
)  # fmt: skip
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

STRATEGY_COLOR, BENCHMARK_COLOR = "#1f5fa8", "#9a9a9a"
# Strategy lines sit above the benchmark's, which can coincide with them (buy-and-hold is its own benchmark).
ABOVE = 3


# --------------------------------------------------------------------------------------------------------------------
# entry point


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
        return _write_single(location)
    raise RlopsError(
        f"{run_dir} holds neither a backtest result ({SUMMARY}) nor a batch ({BATCH_SUMMARY}); "
        "point at a folder written by `rlops backtest run` or `rlops backtest batch`"
    )


def _write_single(location: str) -> str:
    result = load_result(location)
    page, charts = render_result(result)
    return _write(location, page, charts)


def _write_batch(location: str, cells: bool) -> str:
    batch = load_batch(location)
    if cells:
        for index in batch.cell_dirs:
            _write_single(storage.join(location, "cells", f"{index:04d}"))
    reports = {i for i in batch.cell_dirs if storage.exists(storage.join(location, "cells", f"{i:04d}", REPORT))}
    page, charts = render_batch(batch, reports)
    return _write(location, page, charts)


def _write(location: str, page: str, charts: Mapping[str, bytes]) -> str:
    for name, png in charts.items():
        storage.write_bytes(storage.join(location, CHARTS, f"{name}.png"), png)
    target = storage.join(location, REPORT)
    storage.write_bytes(target, page.encode())
    return target


def load_result(location: str) -> BacktestResult:
    try:
        result = BacktestResult.load(location)
    except RlopsError:
        raise
    except Exception as exc:  # a truncated Parquet file or a result.json missing keys: name the folder and why
        raise RlopsError(f"{location}: cannot read the backtest result ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in ("equity", "returns") if c not in result.timeseries.columns]
    if missing:
        raise RlopsError(f"{location}: timeseries.parquet lacks column(s) {', '.join(missing)}")
    if len(result.timeseries) < 3:
        raise RlopsError(f"{location}: {len(result.timeseries)} bar(s) is too short a backtest to report on")
    if not isinstance(result.timeseries.index, pd.DatetimeIndex):
        raise RlopsError(f"{location}: timeseries.parquet is not indexed by timestamp")
    return result


@dataclass(frozen=True)
class Batch:
    location: str
    leaderboard: pd.DataFrame
    metric: str
    deflated_sharpe: float
    trials: int
    grid: dict[str, Any] | None
    cell_dirs: tuple[int, ...]  # cells whose BacktestResult folder exists


def load_batch(location: str) -> Batch:
    where = storage.join(location, BATCH_SUMMARY)
    try:
        summary = json.loads(storage.read_bytes(where))
        metric, deflated, trials = str(summary["metric"]), float(summary["deflated_sharpe"]), int(summary["trials"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise RlopsError(f"{where}: not a batch summary ({type(exc).__name__}: {exc})") from exc
    board_at = storage.join(location, LEADERBOARD)
    if not storage.exists(board_at):
        raise RlopsError(f"{location}: {LEADERBOARD} is missing")
    try:
        board = pd.read_parquet(io.BytesIO(storage.read_bytes(board_at)))
    except Exception as exc:  # pyarrow's errors are many types; the message is what the user needs
        raise RlopsError(f"{board_at}: cannot read ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in ("rank", "cell", "policy", "status", "error") if c not in board.columns]
    if missing:
        raise RlopsError(f"{board_at}: lacks column(s) {', '.join(missing)}")
    grid_at = storage.join(location, "grid.json")
    try:
        grid = json.loads(storage.read_bytes(grid_at)) if storage.exists(grid_at) else None
    except json.JSONDecodeError as exc:
        raise RlopsError(f"{grid_at}: not valid JSON ({exc})") from exc
    cell_dirs = tuple(
        int(i) for i in board["cell"] if storage.exists(storage.join(location, "cells", f"{int(i):04d}", SUMMARY))
    )
    return Batch(location, board, metric, deflated, trials, grid, cell_dirs)


# --------------------------------------------------------------------------------------------------------------------
# series helpers


def periods_per_year(result: BacktestResult) -> float:
    """The figure the metrics used, else the configured one, else bars per calendar year (about 252 for daily bars)."""
    candidates = (result.metrics.get("periods_per_year"), result.config.get("backtest", {}).get("periods_per_year"))
    for configured in candidates:
        if isinstance(configured, int | float) and math.isfinite(configured) and configured > 0:
            return float(configured)
    index = _stamps(result.timeseries)
    years = (index[-1] - index[0]).total_seconds() / (365.25 * 86400)
    if years >= 0.5:
        return (len(index) - 1) / years
    step = float(pd.Series(index).diff().dt.total_seconds().median())
    # Under half a year the calendar is too noisy; assume trading days of 6.5 hours for intraday bars.
    return 252.0 if step >= 20 * 3600 else 252.0 * 6.5 * 3600 / max(step, 1.0)


def drawdown(equity: pd.Series) -> pd.Series:
    return equity / equity.cummax() - 1.0


def rolling_window(n_bars: int, ppy: float) -> int:
    """Half a year of bars, shrunk to a third of the backtest so a short run still gets a curve."""
    return max(2, min(round(ppy / 2), n_bars // 3))


def _stamps(frame: pd.DataFrame | pd.Series) -> pd.DatetimeIndex:
    index = frame.index
    assert isinstance(index, pd.DatetimeIndex)  # load_result refuses anything else
    return index.tz_convert("UTC") if index.tz is not None else index


def yearly_returns(returns: pd.Series) -> pd.Series:
    """Compounded return per calendar year (UTC), indexed by year."""
    index = _stamps(returns)
    return (1.0 + returns.set_axis(index)).groupby(index.year).prod() - 1.0


def monthly_table(returns: pd.Series) -> pd.DataFrame:
    """Compounded return per calendar month (UTC): a row per year, a column per month (1-12), NaN where no bars.

    `returns` are bar returns, without the starting row (see `yearly_table`).
    """
    index = _stamps(returns)
    monthly = (1.0 + returns.set_axis(index)).groupby([index.year, index.month]).prod() - 1.0
    return monthly.unstack().reindex(columns=range(1, 13))


# --------------------------------------------------------------------------------------------------------------------
# charts


def _pyplot() -> Any:
    import matplotlib

    # Reports are written from servers and CI with no display; Agg never needs one.
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(draw: Callable[[Any, Any], None], size: tuple[float, float] = (10.0, 3.6)) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=size, dpi=100)
    try:
        draw(fig, ax)
        fig.tight_layout()
        buffer = io.BytesIO()
        # No Software stamp: the same result gives byte-identical PNGs across matplotlib patch releases.
        fig.savefig(buffer, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)
    return buffer.getvalue()


def _pct_axis(ax: Any) -> None:
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0))


def _style(ax: Any, title: str) -> None:
    ax.set_title(title, loc="left", fontsize=11)
    ax.grid(True, alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _has_benchmark(ts: pd.DataFrame) -> bool:
    return "benchmark_equity" in ts.columns and bool(ts["benchmark_equity"].notna().all())


def chart_equity(result: BacktestResult, log: bool) -> bytes:
    ts = result.timeseries

    def draw(fig: Any, ax: Any) -> None:
        ax.plot(ts.index, ts["equity"], color=STRATEGY_COLOR, lw=1.4, label=result.policy, zorder=ABOVE)
        if _has_benchmark(ts):
            ax.plot(ts.index, ts["benchmark_equity"], color=BENCHMARK_COLOR, lw=1.2, label="benchmark")
        from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

        if log and bool((ts["equity"] > 0).all()):
            ax.set_yscale("log")
            low, high = ax.get_ylim()
            # Matplotlib's log ticks are decades only, so a curve within one decade would get one label.
            ax.yaxis.set_major_locator(MaxNLocator(7) if high / low < 10 else LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        _style(ax, "Equity" + (" (log scale)" if log else ""))
        ax.legend(loc="upper left", frameon=False)

    return _png(draw)


def chart_drawdown(result: BacktestResult) -> bytes:
    ts = result.timeseries

    def draw(fig: Any, ax: Any) -> None:
        under = drawdown(ts["equity"])
        ax.fill_between(ts.index, under.to_numpy(), 0.0, color="#c0392b", alpha=0.35, lw=0, label=result.policy)
        ax.plot(ts.index, under, color="#c0392b", lw=0.8)
        if _has_benchmark(ts):
            ax.plot(ts.index, drawdown(ts["benchmark_equity"]), color=BENCHMARK_COLOR, lw=1.0, label="benchmark")
        _pct_axis(ax)
        _style(ax, "Underwater (drawdown from the running peak)")
        ax.legend(loc="lower left", frameon=False)

    return _png(draw)


def _bench_returns(ts: pd.DataFrame) -> pd.Series | None:
    return ts["benchmark_equity"].pct_change().fillna(0.0) if _has_benchmark(ts) else None


def _risk_free_per_bar(result: BacktestResult, ppy: float) -> float:
    rate = result.config.get("backtest", {}).get("risk_free", 0.0)
    rate = float(rate) if isinstance(rate, int | float) else 0.0
    return float((1.0 + rate) ** (1.0 / ppy) - 1.0)


def chart_rolling_sharpe(result: BacktestResult, ppy: float, window: int) -> bytes:
    ts = result.timeseries
    rf = _risk_free_per_bar(result, ppy)

    def sharpe(returns: pd.Series) -> pd.Series:
        excess = returns.iloc[1:] - rf
        roll = excess.rolling(window)
        std = roll.std()
        return (roll.mean() / std.where(std > 0)) * math.sqrt(ppy)

    def draw(fig: Any, ax: Any) -> None:
        ax.plot(sharpe(ts["returns"]), color=STRATEGY_COLOR, lw=1.2, label=result.policy, zorder=ABOVE)
        bench = _bench_returns(ts)
        if bench is not None:
            ax.plot(sharpe(bench), color=BENCHMARK_COLOR, lw=1.0, label="benchmark")
        ax.axhline(result.metrics.get("sharpe", float("nan")), color=STRATEGY_COLOR, ls="--", lw=0.8)
        ax.axhline(0.0, color="black", lw=0.6)
        _style(ax, f"Rolling Sharpe ({window} bars, annualised; dashed: whole period)")
        ax.legend(loc="upper left", frameon=False)

    return _png(draw)


def chart_rolling_volatility(result: BacktestResult, ppy: float, window: int) -> bytes:
    ts = result.timeseries

    def draw(fig: Any, ax: Any) -> None:
        ax.plot(ts["returns"].iloc[1:].rolling(window).std() * math.sqrt(ppy), color=STRATEGY_COLOR, lw=1.2,
                label=result.policy, zorder=ABOVE)  # fmt: skip
        bench = _bench_returns(ts)
        if bench is not None:
            ax.plot(bench.iloc[1:].rolling(window).std() * math.sqrt(ppy), color=BENCHMARK_COLOR, lw=1.0,
                    label="benchmark")  # fmt: skip
        _pct_axis(ax)
        _style(ax, f"Rolling volatility ({window} bars, annualised)")
        ax.legend(loc="upper left", frameon=False)

    return _png(draw)


def _heatmap(ax: Any, values: np.ndarray, rows: Sequence[str], columns: Sequence[str]) -> None:
    from matplotlib.colors import TwoSlopeNorm

    finite = values[np.isfinite(values)]
    bound = float(np.max(np.abs(finite))) if finite.size else 0.0
    bound = bound if bound > 0 else 0.01
    norm = TwoSlopeNorm(vmin=-bound, vcenter=0.0, vmax=bound)
    ax.imshow(np.ma.masked_invalid(values), cmap="RdYlGn", norm=norm, aspect="auto")
    ax.set_xticks(range(len(columns)), labels=columns)
    ax.set_yticks(range(len(rows)), labels=rows)
    size = 8 if len(columns) <= 13 else 7
    for (r, c), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(c, r, f"{value:.1%}", ha="center", va="center", fontsize=size)
    for side in ax.spines.values():
        side.set_visible(False)


def chart_monthly(result: BacktestResult) -> bytes:
    table = monthly_table(result.timeseries["returns"].iloc[1:])
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    def draw(fig: Any, ax: Any) -> None:
        _heatmap(ax, table.to_numpy(dtype=float), [str(y) for y in table.index], months)
        ax.set_title("Monthly returns", loc="left", fontsize=11)

    return _png(draw, (10.0, max(1.6, 0.45 * len(table) + 1.0)))


def yearly_table(result: BacktestResult) -> pd.DataFrame:
    """A row for the strategy (and the benchmark), a column per calendar year its bars touch."""
    ts = result.timeseries
    # The first row is the starting point, not a bar: left in, a run starting on Dec 31 would show an empty year.
    rows = {result.policy: yearly_returns(ts["returns"].iloc[1:])}
    bench = _bench_returns(ts)
    if bench is not None:
        rows["benchmark"] = yearly_returns(bench.iloc[1:])
    return pd.DataFrame(rows).T


def chart_yearly(result: BacktestResult) -> bytes:
    frame = yearly_table(result)

    def draw(fig: Any, ax: Any) -> None:
        _heatmap(ax, frame.to_numpy(dtype=float), list(frame.index), [str(y) for y in frame.columns])
        ax.set_title("Yearly returns", loc="left", fontsize=11)

    return _png(draw, (10.0, 0.5 * len(frame) + 1.3))


def chart_distribution(result: BacktestResult) -> bytes:
    ts = result.timeseries
    returns = ts["returns"].iloc[1:]

    def draw(fig: Any, ax: Any) -> None:
        bins = max(10, min(80, len(returns) // 10))
        ax.hist(returns, bins=bins, color=STRATEGY_COLOR, alpha=0.75, label=result.policy)
        bench = _bench_returns(ts)
        if bench is not None:
            ax.hist(bench.iloc[1:], bins=bins, histtype="step", color="#555555", lw=1.0, label="benchmark")
        var = float(np.quantile(returns, 0.05))
        ax.axvline(var, color="#c0392b", ls="--", lw=1.0, label=f"5% quantile (VaR 95) {var:.2%}")
        ax.axvline(float(returns.mean()), color="black", lw=0.8, label=f"mean {returns.mean():.3%}")
        from matplotlib.ticker import PercentFormatter

        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        _style(ax, "Distribution of bar returns")
        ax.legend(loc="upper left", frameon=False, fontsize=8)

    return _png(draw)


def _weights(ts: pd.DataFrame) -> pd.DataFrame:
    weights = ts[[c for c in ts.columns if c.startswith("weight_")]]
    return weights.rename(columns=lambda c: c.removeprefix("weight_"))


def chart_positions(result: BacktestResult) -> bytes:
    ts = result.timeseries
    weights = _weights(ts)

    def draw(fig: Any, ax: Any) -> None:
        shown = weights
        if weights.shape[1] > MAX_POSITION_LINES:
            top = weights.abs().mean().nlargest(MAX_POSITION_LINES).index
            shown = weights[top].assign(others=weights.drop(columns=top).sum(axis=1))
        for name in shown.columns:
            ax.step(ts.index, shown[name], where="post", lw=1.0, label=str(name))
        if "gross_exposure" in ts.columns:
            ax.plot(ts.index, ts["gross_exposure"] / ts["equity"], color="black", ls="--", lw=0.9,
                    label="gross exposure")  # fmt: skip
        ax.axhline(0.0, color="black", lw=0.5)
        _pct_axis(ax)
        _style(ax, "Positions (weight of equity per asset)")
        if len(ax.get_lines()) > 1:
            ax.legend(loc="upper left", frameon=False, fontsize=8, ncol=min(5, len(shown.columns) + 1))

    return _png(draw)


def chart_turnover(result: BacktestResult, ppy: float, window: int) -> bytes:
    ts = result.timeseries
    per_bar = ts["traded_value"] / ts["equity"] if "traded_value" in ts.columns else pd.Series(0.0, index=ts.index)

    def draw(fig: Any, ax: Any) -> None:
        ax.vlines(ts.index, 0.0, per_bar.to_numpy(), color=STRATEGY_COLOR, lw=0.8, label="traded value / equity")
        _pct_axis(ax)
        right = ax.twinx()
        right.plot(per_bar.rolling(window).mean() * ppy, color="#e67e22", lw=1.2)
        right.set_ylabel(f"annualised, {window}-bar mean", color="#e67e22")
        right.yaxis.set_major_formatter(ax.yaxis.get_major_formatter())
        right.spines["top"].set_visible(False)
        _style(ax, "Turnover (bars: traded value over equity; line: rolling, annualised)")

    return _png(draw)


def chart_costs(result: BacktestResult) -> bytes:
    ts = result.timeseries

    def draw(fig: Any, ax: Any) -> None:
        for name, color in (("commission", "#8e44ad"), ("slippage", "#e67e22"), ("borrow", "#16a085")):
            if name in ts.columns:
                ax.plot(ts.index, ts[name].cumsum(), lw=1.2, color=color, label=name)
        _style(ax, "Cumulative costs (currency)")
        if ax.get_lines():  # an empty legend is a matplotlib warning
            ax.legend(loc="upper left", frameon=False)

    return _png(draw)


def result_charts(result: BacktestResult) -> dict[str, bytes]:
    ppy = periods_per_year(result)
    window = rolling_window(len(result.timeseries), ppy)
    return {
        "equity": chart_equity(result, log=False),
        "equity_log": chart_equity(result, log=True),
        "drawdown": chart_drawdown(result),
        "rolling_sharpe": chart_rolling_sharpe(result, ppy, window),
        "rolling_volatility": chart_rolling_volatility(result, ppy, window),
        "monthly_returns": chart_monthly(result),
        "yearly_returns": chart_yearly(result),
        "return_distribution": chart_distribution(result),
        "positions": chart_positions(result),
        "turnover": chart_turnover(result, ppy, window),
        "costs": chart_costs(result),
    }


# --------------------------------------------------------------------------------------------------------------------
# HTML


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def fmt_number(value: object, percent: bool = False) -> str:
    if isinstance(value, bool) or value is None:
        return esc(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return "–"
        if math.isinf(number):
            return "∞" if number > 0 else "-∞"
        if percent:
            return f"{number:.2%}"
        return f"{number:,.4f}" if abs(number) < 1e6 else f"{number:,.0f}"
    return esc(value)


def _img(name: str, png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return (
        f'<img class="chart" data-chart="{esc(name)}" alt="{esc(alt)}" src="data:image/png;base64,{data}">'
        f'<p class="png"><a href="{CHARTS}/{esc(name)}.png">{esc(name)}.png</a></p>'
    )


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    html: str


def _section(key: str, title: str, body: str, note: str = "") -> Section:
    """`body` and `note` are HTML the caller has already escaped."""
    blurb = f'<p class="note">{note}</p>' if note else ""
    markup = f'<section id="{esc(key)}" data-section="{esc(key)}"><h2>{esc(title)}</h2>{blurb}{body}</section>'
    return Section(key, title, markup)


def _table(columns: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """`rows` hold HTML already escaped by the caller; the header is escaped here."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _kv_table(pairs: Iterable[tuple[str, str]]) -> str:
    return (
        '<table class="kv"><tbody>'
        + "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in pairs)
        + ("</tbody></table>")
    )


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
    return _table(["metric", "value", "meaning"], rows, "metrics")


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
    return more + _table([str(c) for c in shown.columns], rows, "trades sortable")


def config_block(config: Mapping[str, Any]) -> str:
    return f'<pre class="config">{esc(json.dumps(config, indent=2, sort_keys=True, default=str))}</pre>'


def _tile(label: str, value: str) -> str:
    return f'<div class="tile"><div class="label">{esc(label)}</div><div class="value">{value}</div></div>'


def render_result(result: BacktestResult) -> tuple[str, dict[str, bytes]]:
    """The report page and its charts (name -> PNG bytes)."""
    charts = result_charts(result)
    ppy = periods_per_year(result)
    window = rolling_window(len(result.timeseries), ppy)
    m = result.metrics
    low, high = result.sharpe_ci
    tiles = "".join(
        [
            _tile("total return", fmt_number(m.get("total_return", float("nan")), percent=True)),
            _tile("CAGR", fmt_number(m.get("cagr", float("nan")), percent=True)),
            _tile("Sharpe", f"{fmt_number(m.get('sharpe', float('nan')))}"
                  f'<span class="ci">[{fmt_number(low)}, {fmt_number(high)}]</span>'),
            _tile("max drawdown", fmt_number(m.get("max_drawdown", float("nan")), percent=True)),
            _tile("trades", fmt_number(len(result.trades))),
        ]
    )  # fmt: skip
    identity = _kv_table(
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
        + _img("equity", charts["equity"], "equity, linear scale")
        + "</div>"
        + '<div class="scale" data-scale-view="log" hidden>'
        + _img("equity_log", charts["equity_log"], "equity, log scale")
        + "</div>"
    )
    sections = [
        _section("summary", "Summary", f'<div class="tiles">{tiles}</div>{identity}'),
        _section("equity", "Equity against the benchmark", equity,
                 "Strategy equity and the benchmark (buy-and-hold of the same market under the same costs). "
                 "Log scale shows equal percentage moves as equal heights."),
        _section("drawdown", "Underwater drawdown", _img("drawdown", charts["drawdown"], "drawdown"),
                 "How far equity sits below its running peak at each bar."),
        _section("rolling", "Rolling Sharpe and volatility",
                 _img("rolling_sharpe", charts["rolling_sharpe"], "rolling Sharpe")
                 + _img("rolling_volatility", charts["rolling_volatility"], "rolling volatility"),
                 f"Over a trailing window of {window} bars, annualised with {ppy:,.1f} bars a year."),
        _section("heatmaps", "Monthly and yearly returns",
                 _img("monthly_returns", charts["monthly_returns"], "monthly returns")
                 + _img("yearly_returns", charts["yearly_returns"], "yearly returns"),
                 "Compounded returns per calendar month and year (UTC); a partial first or last period "
                 "covers only its bars."),
        _section("distribution", "Return distribution",
                 _img("return_distribution", charts["return_distribution"], "distribution of returns")),
        _section("positions", "Positions", _img("positions", charts["positions"], "positions"),
                 "Signed weight of each asset in equity (negative is short), and gross exposure over equity."),
        _section("turnover", "Turnover", _img("turnover", charts["turnover"], "turnover")),
        _section("costs", "Costs", _img("costs", charts["costs"], "cumulative costs")),
        _section("metrics", "Metrics", metrics_table(result),
                 f"The Sharpe interval is a bootstrap {_confidence(result):.0%} confidence interval: "
                 "a range that wide is what resampling the same returns gives."),
        _section("trades", "Trades", trades_table(result.trades),
                 "Round trips; an open trade is valued at the last close. Click a header to sort."),
        _section("config", "Configuration", config_block(result.config)),
    ]  # fmt: skip
    title = f"Backtest: {result.policy} on {result.dataset} ({result.period})"
    return page(title, sections), charts


# --------------------------------------------------------------------------------------------------------------------
# batch


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

    return _png(draw, (10.0, max(2.2, 0.32 * len(values) + 1.2)))


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
    return (
        f'<p class="dsr"><strong>Deflated Sharpe ratio: <span data-dsr>{fmt_number(value, percent=True)}</span>'
        f"</strong> over {fmt_number(batch.trials)} successful trial(s).</p>"
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
    metric_columns = [c for c in (batch.metric, "sharpe", "total_return", "max_drawdown") if c in board.columns]
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
    return _table(header, rows, "leaderboard sortable")


def failed_table(batch: Batch) -> str:
    failed = batch.leaderboard[batch.leaderboard["status"] != "ok"]
    if failed.empty:
        return '<p class="empty">Every cell succeeded.</p>'
    rows = [
        (esc(int(r["cell"])), esc(r["policy"]), esc(r.get("dataset", "")), esc(r.get("period", "")),
         esc(r.get("params", "")), f'<code class="error">{esc(r["error"])}</code>')
        for r in failed.to_dict("records")
    ]  # fmt: skip
    return _table(["cell", "policy", "dataset", "period", "params", "error"], rows, "failed")


def render_batch(batch: Batch, reports: set[int] | None = None) -> tuple[str, dict[str, bytes]]:
    charts = {"leaderboard": chart_batch(batch)}
    board = batch.leaderboard
    ok = int((board["status"] == "ok").sum())
    tiles = "".join(
        [
            _tile("cells", fmt_number(len(board))),
            _tile("succeeded", fmt_number(ok)),
            _tile("failed", fmt_number(len(board) - ok)),
            _tile("ranked by", f"<code>{esc(batch.metric)}</code>"),
            _tile("deflated Sharpe", fmt_number(batch.deflated_sharpe, percent=True)),
        ]
    )
    shown = min(ok, MAX_BAR_CELLS)
    sections = [
        _section("summary", "Summary", f'<div class="tiles">{tiles}</div>'),
        _section("deflated-sharpe", "Is the best of N trials luck?", deflated_note(batch)),
        _section("leaderboard", "Leaderboard", leaderboard_table(batch, reports or set()),
                 f"Ranked by {esc(batch.metric)}, failed cells last. Click a header to sort."),
        _section("comparison", "Cells compared", _img("leaderboard", charts["leaderboard"], "cells by metric"),
                 f"The {shown} best successful cell(s) by {esc(batch.metric)}."),
        _section("failed", "Failed cells", failed_table(batch),
                 "A failing cell is recorded with its error and never stops the batch."),
        _section("config", "Grid", config_block(batch.grid) if batch.grid is not None
                 else '<p class="empty">grid.json is missing.</p>'),
    ]  # fmt: skip
    return page(f"Batch backtest: {len(board)} cells ranked by {batch.metric}", sections), charts


# --------------------------------------------------------------------------------------------------------------------
# page shell

CSS = """
:root { --ink: #1b1f24; --muted: #5b6470; --line: #d9dee4; --accent: #1f5fa8; --bad: #b03a2e; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); }
header { padding: 18px 28px 10px; border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 4px; font-size: 20px; }
header .meta { color: var(--muted); font-size: 12px; }
nav { padding: 6px 28px; border-bottom: 1px solid var(--line); position: sticky; top: 0; background: #fff;
      z-index: 1; font-size: 13px; }
nav a { margin-right: 12px; color: var(--accent); text-decoration: none; }
main { padding: 0 28px 40px; max-width: 1120px; }
section { margin-top: 26px; }
h2 { font-size: 16px; margin: 0 0 6px; }
.note { color: var(--muted); margin: 0 0 8px; }
img.chart { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); margin: 4px 0 2px; }
p.png { margin: 0 0 10px; font-size: 11px; }
p.png a { color: var(--muted); }
.tiles { display: flex; flex-wrap: wrap; gap: 10px; margin-bottom: 12px; }
.tile { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 130px; }
.tile .label { color: var(--muted); font-size: 12px; }
.tile .value { font-size: 18px; font-weight: 600; }
.ci { color: var(--muted); font-size: 12px; font-weight: 400; margin-left: 6px; }
table { border-collapse: collapse; font-size: 12.5px; margin: 4px 0 8px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
thead th { background: #f3f5f7; position: sticky; top: 31px; }
table.sortable thead th { cursor: pointer; user-select: none; }
table.sortable thead th[aria-sort="ascending"]::after { content: " ▲"; }
table.sortable thead th[aria-sort="descending"]::after { content: " ▼"; }
table.kv th { background: none; color: var(--muted); font-weight: 500; position: static; }
td code.error, .error { color: var(--bad); white-space: pre-wrap; }
.hint { color: var(--muted); font-family: ui-monospace, monospace; font-size: 11px; }
pre.config { background: #f6f8fa; border: 1px solid var(--line); padding: 10px; overflow: auto; font-size: 12px; }
.toggle button { border: 1px solid var(--line); background: #fff; padding: 3px 12px; cursor: pointer; }
.toggle button[aria-pressed="true"] { background: var(--accent); color: #fff; border-color: var(--accent); }
.empty { color: var(--muted); font-style: italic; }
#report-status { display: none; }
"""

# Installed before anything else runs, so an error in any later script (or an image that fails to decode) is
# recorded where a headless browser can read it back with --dump-dom.
GUARD_JS = """
(function () {
  var errors = [];
  function record(text) {
    errors.push(String(text));
    var box = document.getElementById("report-status");
    if (box) { box.setAttribute("data-errors", String(errors.length)); box.textContent = errors.join("\\n"); }
  }
  window.__reportErrors = errors;
  window.__recordReportError = record;
  window.addEventListener("error", function (event) {
    var target = event.target;
    if (target && target !== window && target.tagName) {
      record("failed to load " + target.tagName.toLowerCase() + " " + (target.getAttribute("data-chart") || ""));
    } else {
      record((event.message || "script error") + " at line " + (event.lineno || "?"));
    }
  }, true);
  window.addEventListener("unhandledrejection", function (event) { record("unhandled rejection: " + event.reason); });
  var consoleError = console.error;
  console.error = function () {
    record("console.error: " + Array.prototype.join.call(arguments, " "));
    return consoleError.apply(console, arguments);
  };
})();
"""

PAGE_JS = """
(function () {
  function setScale(scale) {
    document.querySelectorAll("[data-scale-view]").forEach(function (view) {
      view.hidden = view.getAttribute("data-scale-view") !== scale;
    });
    document.querySelectorAll(".toggle button").forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.getAttribute("data-scale") === scale));
    });
    document.body.setAttribute("data-equity-scale", scale);
  }
  document.querySelectorAll(".toggle button").forEach(function (button) {
    button.addEventListener("click", function () { setScale(button.getAttribute("data-scale")); });
  });
  if (document.querySelector(".toggle")) { setScale(location.hash === "#log" ? "log" : "linear"); }

  function cellValue(row, index) {
    var text = row.cells[index] ? row.cells[index].textContent.trim() : "";
    var number = parseFloat(text.replace(/[,%]/g, "").replace("∞", "Infinity").replace("–", "NaN"));
    return isNaN(number) ? text : number;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (header, index) {
      header.addEventListener("click", function () {
        var ascending = header.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
        header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a, index), y = cellValue(b, index);
          var order = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y));
          return ascending ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });

  window.addEventListener("load", function () {
    var charts = document.querySelectorAll("img.chart");
    var rendered = 0;
    charts.forEach(function (img) {
      if (img.complete && img.naturalWidth > 0) { rendered += 1; }
      else { window.__recordReportError("chart did not render: " + img.getAttribute("data-chart")); }
    });
    var box = document.getElementById("report-status");
    box.setAttribute("data-charts", String(charts.length));
    box.setAttribute("data-charts-rendered", String(rendered));
    box.setAttribute("data-errors", String(window.__reportErrors.length));
    box.setAttribute("data-state", window.__reportErrors.length === 0 ? "ok" : "error");
  });
})();
"""


def page(title: str, sections: Sequence[Section]) -> str:
    nav = "".join(f'<a href="#{esc(s.key)}">{esc(s.title)}</a>' for s in sections)
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style><script>{GUARD_JS}</script></head>"
        f'<body data-report="rlops"><header><h1>{esc(title)}</h1>'
        f'<div class="meta">rlops report · generated {esc(generated)}</div></header>'
        f"<nav>{nav}</nav><main>{''.join(s.html for s in sections)}</main>"
        '<div id="report-status" data-state="loading" data-errors="0"></div>'
        f"<script>{PAGE_JS}</script></body></html>\n"
    )
