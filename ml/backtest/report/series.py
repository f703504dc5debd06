"""Series computed from a backtest result for its report: annualisation, drawdowns, calendar returns."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from ml.backtest.result import BacktestResult

CLOSE_PREFIX = "close_"


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


def with_benchmark(result: BacktestResult) -> tuple[BacktestResult, str]:
    """`result` with a complete `benchmark_equity` column where one can be had, and where it came from ("" if none).

    A backtest run by `ml.backtest.engine` carries its benchmark; a result from elsewhere may carry only the assets'
    closes (`close_<symbol>`), from which an equal-weight buy-and-hold without costs is the fairest stand-in.
    """
    ts = result.timeseries
    if has_benchmark(ts):
        name = result.config.get("backtest", {}).get("benchmark", "buy_and_hold")
        return result, f"{name} of the same assets, run by the backtest under the same costs"
    closes = ts[[c for c in ts.columns if c.startswith(CLOSE_PREFIX)]].astype(float)
    if closes.shape[1] and bool(closes.notna().all().all()) and bool((closes.iloc[0] > 0).all()):
        growth = (closes / closes.iloc[0]).mean(axis=1)
        derived = ts.assign(benchmark_equity=float(ts["equity"].iloc[0]) * growth)
        return replace(result, timeseries=derived), "equal-weight buy-and-hold of the result's closes, without costs"
    return result, ""


def in_sample(result: BacktestResult) -> bool:
    """The result's own `in_sample` verdict where it has one (ml/backtest/provenance.py); otherwise only the train
    split is in-sample."""
    return bool(result.in_sample) if result.in_sample is not None else result.period == "train"


DRAWDOWN_COLUMNS = ("start", "trough", "recovery", "depth", "bars")


def worst_drawdowns(equity: pd.Series, top: int = 5) -> pd.DataFrame:
    """The `top` deepest drawdown episodes of `equity`, deepest first, counted as `metrics.drawdown_durations` does.

    An episode starts at the bar of its peak and recovers on the first bar back at or above that peak (`recovery`
    is NaT when it never does); `bars` runs from the peak to the recovery, or to the last bar.
    """
    curve = equity.to_numpy(dtype=float)
    peaks = np.maximum.accumulate(curve)
    depth = curve / peaks - 1.0
    edges = np.diff((curve < peaks).astype(np.int8))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) + 1
    rows = []
    for k, peak in enumerate(starts.tolist()):
        stop = int(ends[k]) if k < len(ends) else None
        trough = peak + int(np.argmin(depth[peak : stop if stop is not None else len(curve)]))
        last = stop if stop is not None else len(curve) - 1
        rows.append((equity.index[peak], equity.index[trough], equity.index[stop] if stop is not None else pd.NaT,
                     float(depth[trough]), last - peak))  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(DRAWDOWN_COLUMNS))
    return frame.sort_values("depth", kind="stable").head(top).reset_index(drop=True)
