"""The single-result report's charts, each drawn with matplotlib's Agg backend and returned as PNG bytes."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ml.backtest.report.series import (
    asset_weights,
    bench_returns,
    drawdown,
    has_benchmark,
    monthly_table,
    periods_per_year,
    risk_free_per_bar,
    rolling_window,
    yearly_table,
)
from ml.backtest.result import BacktestResult

MAX_POSITION_LINES = 8
STRATEGY_COLOR, BENCHMARK_COLOR = "#1f5fa8", "#9a9a9a"
# Strategy lines sit above the benchmark's, which can coincide with them (buy-and-hold is its own benchmark).
ABOVE = 3


def pyplot() -> Any:
    import matplotlib

    # Reports are written from servers and CI with no display; Agg never needs one.
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def png(draw: Callable[[Any, Any], None], size: tuple[float, float] = (10.0, 3.6), **layout: Any) -> bytes:
    """PNG bytes of one figure drawn by `draw(fig, axes)`; `layout` goes to plt.subplots (rows, shared axes...)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=size, dpi=100, **layout)
    try:
        draw(fig, ax)
        fig.tight_layout()
        buffer = io.BytesIO()
        # No Software stamp: the same result gives byte-identical PNGs across matplotlib patch releases.
        fig.savefig(buffer, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)
    return buffer.getvalue()


def pct_axis(ax: Any) -> None:
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0))


def style(ax: Any, title: str) -> None:
    ax.set_title(title, loc="left", fontsize=11)
    ax.grid(True, alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def chart_equity(result: BacktestResult, log: bool) -> bytes:
    ts = result.timeseries

    def draw(fig: Any, ax: Any) -> None:
        ax.plot(ts.index, ts["equity"], color=STRATEGY_COLOR, lw=1.4, label=result.policy, zorder=ABOVE)
        if has_benchmark(ts):
            ax.plot(ts.index, ts["benchmark_equity"], color=BENCHMARK_COLOR, lw=1.2, label="benchmark")
        from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

        if log and bool((ts["equity"] > 0).all()):
            ax.set_yscale("log")
            low, high = ax.get_ylim()
            # Matplotlib's log ticks are decades only, so a curve within one decade would get one label.
            ax.yaxis.set_major_locator(MaxNLocator(7) if high / low < 10 else LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        style(ax, "Equity" + (" (log scale)" if log else ""))
        ax.legend(loc="upper left", frameon=False)

    return png(draw)


def chart_drawdown(result: BacktestResult) -> bytes:
    ts = result.timeseries

    def draw(fig: Any, ax: Any) -> None:
        under = drawdown(ts["equity"])
        ax.fill_between(ts.index, under.to_numpy(), 0.0, color="#c0392b", alpha=0.35, lw=0, label=result.policy)
        ax.plot(ts.index, under, color="#c0392b", lw=0.8)
        if has_benchmark(ts):
            ax.plot(ts.index, drawdown(ts["benchmark_equity"]), color=BENCHMARK_COLOR, lw=1.0, label="benchmark")
        pct_axis(ax)
        style(ax, "Underwater (drawdown from the running peak)")
        ax.legend(loc="lower left", frameon=False)

    return png(draw)


def chart_rolling_sharpe(result: BacktestResult, ppy: float, window: int) -> bytes:
    ts = result.timeseries
    rf = risk_free_per_bar(result, ppy)

    def sharpe(returns: pd.Series) -> pd.Series:
        excess = returns.iloc[1:] - rf
        roll = excess.rolling(window)
        std = roll.std()
        return (roll.mean() / std.where(std > 0)) * math.sqrt(ppy)

    def draw(fig: Any, ax: Any) -> None:
        ax.plot(sharpe(ts["returns"]), color=STRATEGY_COLOR, lw=1.2, label=result.policy, zorder=ABOVE)
        bench = bench_returns(ts)
        if bench is not None:
            ax.plot(sharpe(bench), color=BENCHMARK_COLOR, lw=1.0, label="benchmark")
        ax.axhline(result.metrics.get("sharpe", float("nan")), color=STRATEGY_COLOR, ls="--", lw=0.8)
        ax.axhline(0.0, color="black", lw=0.6)
        style(ax, f"Rolling Sharpe ({window} bars, annualised; dashed: whole period)")
        ax.legend(loc="upper left", frameon=False)

    return png(draw)


def chart_rolling_volatility(result: BacktestResult, ppy: float, window: int) -> bytes:
    ts = result.timeseries

    def draw(fig: Any, ax: Any) -> None:
        ax.plot(ts["returns"].iloc[1:].rolling(window).std() * math.sqrt(ppy), color=STRATEGY_COLOR, lw=1.2,
                label=result.policy, zorder=ABOVE)  # fmt: skip
        bench = bench_returns(ts)
        if bench is not None:
            ax.plot(bench.iloc[1:].rolling(window).std() * math.sqrt(ppy), color=BENCHMARK_COLOR, lw=1.0,
                    label="benchmark")  # fmt: skip
        pct_axis(ax)
        style(ax, f"Rolling volatility ({window} bars, annualised)")
        ax.legend(loc="upper left", frameon=False)

    return png(draw)


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

    return png(draw, (10.0, max(1.6, 0.45 * len(table) + 1.0)))


def chart_yearly(result: BacktestResult) -> bytes:
    frame = yearly_table(result)

    def draw(fig: Any, ax: Any) -> None:
        _heatmap(ax, frame.to_numpy(dtype=float), list(frame.index), [str(y) for y in frame.columns])
        ax.set_title("Yearly returns", loc="left", fontsize=11)

    return png(draw, (10.0, 0.5 * len(frame) + 1.3))


def chart_distribution(result: BacktestResult) -> bytes:
    ts = result.timeseries
    returns = ts["returns"].iloc[1:]

    def draw(fig: Any, ax: Any) -> None:
        bins = max(10, min(80, len(returns) // 10))
        ax.hist(returns, bins=bins, color=STRATEGY_COLOR, alpha=0.75, label=result.policy)
        bench = bench_returns(ts)
        if bench is not None:
            ax.hist(bench.iloc[1:], bins=bins, histtype="step", color="#555555", lw=1.0, label="benchmark")
        var = float(np.quantile(returns, 0.05))
        ax.axvline(var, color="#c0392b", ls="--", lw=1.0, label=f"5% quantile (VaR 95) {var:.2%}")
        ax.axvline(float(returns.mean()), color="black", lw=0.8, label=f"mean {returns.mean():.3%}")
        from matplotlib.ticker import PercentFormatter

        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        style(ax, "Distribution of bar returns")
        ax.legend(loc="upper left", frameon=False, fontsize=8)

    return png(draw)


def chart_positions(result: BacktestResult) -> bytes:
    ts = result.timeseries
    weights = asset_weights(ts)

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
        pct_axis(ax)
        style(ax, "Positions (weight of equity per asset)")
        if len(ax.get_lines()) > 1:
            ax.legend(loc="upper left", frameon=False, fontsize=8, ncol=min(5, len(shown.columns) + 1))

    return png(draw)


def chart_turnover(result: BacktestResult, ppy: float, window: int) -> bytes:
    ts = result.timeseries
    per_bar = ts["traded_value"] / ts["equity"] if "traded_value" in ts.columns else pd.Series(0.0, index=ts.index)

    def draw(fig: Any, ax: Any) -> None:
        ax.vlines(ts.index, 0.0, per_bar.to_numpy(), color=STRATEGY_COLOR, lw=0.8, label="traded value / equity")
        pct_axis(ax)
        right = ax.twinx()
        right.plot(per_bar.rolling(window).mean() * ppy, color="#e67e22", lw=1.2)
        right.set_ylabel(f"annualised, {window}-bar mean", color="#e67e22")
        right.yaxis.set_major_formatter(ax.yaxis.get_major_formatter())
        right.spines["top"].set_visible(False)
        style(ax, "Turnover (bars: traded value over equity; line: rolling, annualised)")

    return png(draw)


def chart_costs(result: BacktestResult) -> bytes:
    ts = result.timeseries

    def draw(fig: Any, ax: Any) -> None:
        for name, color in (("commission", "#8e44ad"), ("slippage", "#e67e22"), ("borrow", "#16a085")):
            if name in ts.columns:
                ax.plot(ts.index, ts[name].cumsum(), lw=1.2, color=color, label=name)
        style(ax, "Cumulative costs (currency)")
        if ax.get_lines():  # an empty legend is a matplotlib warning
            ax.legend(loc="upper left", frameon=False)

    return png(draw)


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
