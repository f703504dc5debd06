"""Backtest throughput: (a) 20 MLP checkpoints x 10 assets x 10 years of daily bars in one sweep, and
(b) the full metrics set on 1,000 return series, rlops against quantstats on the same series.

Targets: >= 1,000,000 bar-decisions/s on 2 cores; metrics >= 20x faster than quantstats.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.untrained_policies import random_policy_checkpoints
from ml.agents.policy import load_policy
from ml.backtest.metrics import compute_metrics_many
from ml.backtest.vectorized import default_workers, sweep
from ml.data.bars import Bars
from ml.data.splits import Span
from ml.envs import EnvConfig, prepare

BARS, ASSETS, POLICIES, SERIES = 2520, 10, 20, 1000


def synthetic_bars(seed: int) -> Bars:
    rng = np.random.default_rng(seed)
    stamps = pd.bdate_range("2010-01-04", periods=BARS, tz="UTC")
    frames = []
    for a in range(ASSETS):
        close = 100 * np.exp(np.cumsum(rng.normal(3e-4, 0.012, BARS)))
        open_ = close * np.exp(rng.normal(0, 0.003, BARS))
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": stamps,
                    "symbol": f"S{a:02d}",
                    "open": open_,
                    "high": np.maximum(open_, close) * 1.004,
                    "low": np.minimum(open_, close) * 0.996,
                    "close": close,
                    "volume": rng.uniform(1e6, 5e6, BARS),
                }
            )
        )
    return Bars(frame=pd.concat(frames, ignore_index=True), name="synthetic-10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quantstats-series", type=int, default=20, help="series timed with quantstats (scaled)")
    args = parser.parse_args()

    config = EnvConfig(window=16)
    data = prepare(synthetic_bars(0))
    single_asset_markets, warm_up_markets = [], []
    for a in range(ASSETS):
        one = Bars(frame=data.bars.frame[data.bars.frame["symbol"] == f"S{a:02d}"].reset_index(drop=True), name=f"S{a}")
        prepared = prepare(one, split=data.split)
        single_asset_markets.append(prepared.market(Span(0, BARS), config.window))
        warm_up_markets.append(prepared.market(Span(0, 100), config.window))
    obs_dim = config.window * len(single_asset_markets[0].feature_names) + 3
    with tempfile.TemporaryDirectory() as folder:
        paths = random_policy_checkpoints(Path(folder), obs_dim, len(config.levels), POLICIES, config.to_dict())
        policies = [load_policy(p) for p in paths]
    # Compiled kernels loaded, memory first touched: one-off costs a long sweep amortises, outside the timing.
    sweep(policies, warm_up_markets, config)
    start = time.perf_counter()
    result = sweep(policies, single_asset_markets, config)
    elapsed = time.perf_counter() - start
    rate = result.decisions / elapsed
    print(f"(a) {POLICIES} policies x {ASSETS} assets x {BARS} daily bars: {result.decisions:,} bar-decisions")
    print(
        f"    wall time {elapsed:.2f} s, {rate:,.0f} bar-decisions/s on {default_workers()} cores "
        "(target >= 1,000,000 on 2 cores)"
    )

    rng = np.random.default_rng(1)
    returns = rng.normal(4e-4, 0.01, size=(BARS, SERIES))
    benchmark = rng.normal(3e-4, 0.011, size=BARS)
    start = time.perf_counter()
    compute_metrics_many(returns, 252.0, benchmark=benchmark)
    ours = time.perf_counter() - start

    import quantstats as qs

    index = pd.bdate_range("2010-01-04", periods=BARS)
    bench_series = pd.Series(benchmark, index=index)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for j in range(args.quantstats_series):
            series = pd.Series(returns[:, j], index=index)
            qs.stats.comp(series)
            qs.stats.cagr(series)
            qs.stats.volatility(series)
            qs.stats.sharpe(series)
            qs.stats.sortino(series)
            qs.stats.calmar(series)
            qs.stats.max_drawdown(series)
            qs.stats.win_rate(series)
            qs.stats.profit_factor(series)
            qs.stats.avg_win(series)
            qs.stats.avg_loss(series)
            qs.stats.value_at_risk(series)
            qs.stats.cvar(series)
            qs.stats.skew(series)
            qs.stats.kurtosis(series)
            qs.stats.tail_ratio(series)
            qs.stats.greeks(series, bench_series)
    theirs = (time.perf_counter() - start) * SERIES / args.quantstats_series
    print(
        f"(b) full metrics on {SERIES} series of {BARS} bars: rlops {ours:.2f} s, quantstats {theirs:.1f} s "
        f"(timed on {args.quantstats_series} series, scaled)"
    )
    print(f"    rlops is {theirs / ours:,.0f}x faster  (target >= 20x)")


if __name__ == "__main__":
    main()
