"""Series computed from a backtest result for its report: annualisation, drawdowns, calendar returns."""

from __future__ import annotations

import math

import pandas as pd

from ml.backtest.result import BacktestResult


def periods_per_year(result: BacktestResult) -> float:
    """The figure the metrics used, else the configured one, else bars per calendar year (about 252 for daily bars)."""
    candidates = (result.metrics.get("periods_per_year"), result.config.get("backtest", {}).get("periods_per_year"))
    for configured in candidates:
        if isinstance(configured, int | float) and math.isfinite(configured) and configured > 0:
            return float(configured)
    index = stamps(result.timeseries)
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


def stamps(frame: pd.DataFrame | pd.Series) -> pd.DatetimeIndex:
    index = frame.index
    assert isinstance(index, pd.DatetimeIndex)  # load_result refuses anything else
    return index.tz_convert("UTC") if index.tz is not None else index


def yearly_returns(returns: pd.Series) -> pd.Series:
    """Compounded return per calendar year (UTC), indexed by year."""
    index = stamps(returns)
    return (1.0 + returns.set_axis(index)).groupby(index.year).prod() - 1.0


def monthly_table(returns: pd.Series) -> pd.DataFrame:
    """Compounded return per calendar month (UTC): a row per year, a column per month (1-12), NaN where no bars.

    `returns` are bar returns, without the starting row (see `yearly_table`).
    """
    index = stamps(returns)
    monthly = (1.0 + returns.set_axis(index)).groupby([index.year, index.month]).prod() - 1.0
    return monthly.unstack().reindex(columns=range(1, 13))


def has_benchmark(ts: pd.DataFrame) -> bool:
    return "benchmark_equity" in ts.columns and bool(ts["benchmark_equity"].notna().all())


def bench_returns(ts: pd.DataFrame) -> pd.Series | None:
    return ts["benchmark_equity"].pct_change().fillna(0.0) if has_benchmark(ts) else None


def risk_free_per_bar(result: BacktestResult, ppy: float) -> float:
    rate = result.config.get("backtest", {}).get("risk_free", 0.0)
    rate = float(rate) if isinstance(rate, int | float) else 0.0
    return float((1.0 + rate) ** (1.0 / ppy) - 1.0)


def yearly_table(result: BacktestResult) -> pd.DataFrame:
    """A row for the strategy (and the benchmark), a column per calendar year its bars touch."""
    ts = result.timeseries
    # The first row is the starting point, not a bar: left in, a run starting on Dec 31 would show an empty year.
    rows = {result.policy: yearly_returns(ts["returns"].iloc[1:])}
    bench = bench_returns(ts)
    if bench is not None:
        rows["benchmark"] = yearly_returns(bench.iloc[1:])
    return pd.DataFrame(rows).T


def asset_weights(ts: pd.DataFrame) -> pd.DataFrame:
    weights = ts[[c for c in ts.columns if c.startswith("weight_")]]
    return weights.rename(columns=lambda c: c.removeprefix("weight_"))
