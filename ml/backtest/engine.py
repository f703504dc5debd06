"""`backtest(policy, data, config)`: one policy over one period, executed by the environment's own kernel."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ml.backtest.baselines import baseline
from ml.backtest.metrics import compute_metrics
from ml.backtest.policies import ResolvedPolicy, as_batch_actions, resolve_policy
from ml.backtest.provenance import Verdict, check_provenance, default_dataset
from ml.backtest.result import BacktestResult, CostBreakdown
from ml.backtest.stats import bootstrap_sharpe_ci
from ml.backtest.trades import round_trips
from ml.data.features import FeatureConfig
from ml.data.splits import Span, SplitConfig, walk_forward
from ml.envs.config import EnvConfig
from ml.envs.execution_log import FillLog
from ml.envs.factory import prepared
from ml.envs.market import MarketData, PreparedData
from ml.envs.trading_env import TradingEnv
from rlops_core.errors import RlopsError

PERIODS = ("train", "validation", "test")


@dataclass(frozen=True)
class BacktestConfig:
    """What to run a policy on and how to score it.

    `period` is train, validation or test (the dataset's date split), or `wf:K/N` for the K-th of N
    walk-forward windows covering the validation and test span. `env` overrides environment settings on top of
    the policy's own (a checkpoint brings the window and action interface it was trained with). `split` (a
    `SplitConfig` mapping) cuts the dataset; None means the split a checkpoint recorded, else the default one.
    """

    period: str = "test"
    env: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)  # baseline parameters (e.g. fast/slow for ma_crossover)
    seed: int = 0
    risk_free: float = 0.0
    periods_per_year: float | None = None  # default: from the bar frequency
    benchmark: str = "buy_and_hold"
    bootstrap_samples: int = 1000
    confidence: float = 0.95
    # A checkpoint on a period overlapping its training period is refused unless this is set (ml.backtest.provenance).
    allow_in_sample: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_period(data: PreparedData, period: str) -> Span:
    if period in PERIODS:
        return data.split.part(period)
    if period.startswith("wf:"):
        try:
            index, count = (int(x) for x in period[3:].split("/"))
        except ValueError as exc:
            raise RlopsError(f"walk-forward period must read wf:K/N (got '{period}')") from exc
        if not 0 <= index < count:
            raise RlopsError(f"walk-forward period {period}: K must be in [0, N)")
        bars = data.panel.num_bars
        span = bars - data.split.validation.start
        if span // count < 1:
            raise RlopsError(
                f"period {period} is empty: {count} windows over the {span}-bar out-of-sample span leave no bars"
            )
        return walk_forward(bars, folds=count, test_size=span // count)[index].test
    raise RlopsError(f"unknown split '{period}'; use train, validation, test or wf:K/N")


def _env_config(policy: ResolvedPolicy, config: BacktestConfig) -> EnvConfig:
    settings = {**policy.env_settings, **config.env}
    return EnvConfig.from_dict(settings)


def split_of(policy: ResolvedPolicy, config: BacktestConfig) -> SplitConfig:
    """The split to score on: the one asked for, else the checkpoint's own (so its test split is the one its
    training never saw), else the default."""
    chosen = config.split if config.split is not None else policy.split_settings
    return SplitConfig.from_dict(chosen)


def _features(policy: ResolvedPolicy) -> FeatureConfig:
    return FeatureConfig.from_dict(policy.feature_settings)


def run_env(env: TradingEnv, act: Any) -> FillLog:
    """Run one full episode, feeding each observation (as a batch of one) to `act`; returns the fill log."""
    obs, _ = env.reset(seed=0)
    done = False
    while not done:
        actions = as_batch_actions(act(obs[None, :]), 1)
        obs, _, terminated, truncated, _ = env.step(actions[0])
        done = terminated or truncated
    assert env.log is not None
    return env.log.fill_log()


def backtest(
    policy: Any, data: str | None = None, config: BacktestConfig | None = None, interval: bool = True
) -> BacktestResult:
    """Backtest `policy` (checkpoint path, `baseline:NAME`, loaded policy, or callable) on dataset `data`:
    by default a checkpoint's own dataset, sp500 for anything else. `interval`: as `assemble_result` takes it."""
    config = config or BacktestConfig()
    resolved = resolve_policy(policy, config.params, config.seed)
    data = data or default_dataset(resolved.provenance)
    env_config = _env_config(resolved, config)
    prepared_data = prepared(data, _features(resolved), split_of(resolved, config))
    span = resolve_period(prepared_data, config.period)
    market = prepared_data.market(span, env_config.window)
    verdict(resolved, config, market, span)  # refuses an in-sample run before any bar is stepped
    env = TradingEnv(market, env_config, record=True)
    if resolved.obs_dim is not None and resolved.obs_dim != env.sim.obs_size:
        raise RlopsError(
            f"policy '{resolved.name}' expects observations of size {resolved.obs_dim}, but dataset '{data}' with "
            f"{market.num_assets} asset(s), {len(market.feature_names)} features and a {env_config.window}-bar "
            f"window gives {env.sim.obs_size}"
        )
    log = run_env(env, resolved.build(env.sim))
    return assemble_result(
        resolved, data, config, env_config, market, log, benchmark_log(market, env_config, config), span, interval
    )


def _simple_returns(equity: np.ndarray, fill_missing: bool) -> np.ndarray:
    """Each bar's return on the previous one, the first NaN: what pandas' `pct_change` computes, operation for
    operation; `fill_missing` then zeroes every NaN (the first bar, and 0/0 after a ruin) as `fillna(0.0)`."""
    returns = np.empty_like(equity, dtype=np.float64)
    returns[0] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        returns[1:] = equity[1:] / equity[:-1] - 1
    return np.where(np.isnan(returns), 0.0, returns) if fill_missing else returns


def verdict(policy: ResolvedPolicy, config: BacktestConfig, market: MarketData, span: Span) -> Verdict:
    """Whether scoring `policy` on `span` of `market` is in-sample (refused unless allowed), and its warnings."""
    stamps = market.timestamps
    return check_provenance(
        policy.name,
        policy.provenance,
        config.period,
        stamps[span.start].isoformat(),
        stamps[span.stop - 1].isoformat(),
        market.fingerprint,
        config.allow_in_sample,
    )


def benchmark_log(market: MarketData, env_config: EnvConfig, config: BacktestConfig) -> FillLog:
    """The benchmark's fill log on `market`: the same for every policy scored there under these settings."""
    bench = TradingEnv(market, replace(env_config, action_mode="discrete", levels=(0.0, 1.0)), record=True)
    return run_env(bench, baseline(config.benchmark, bench.sim, config.seed))


def assemble_result(
    policy: ResolvedPolicy,
    data: str,
    config: BacktestConfig,
    env_config: EnvConfig,
    market: MarketData,
    log: FillLog,
    bench_log: FillLog,
    span: Span,
    interval: bool = True,
) -> BacktestResult:
    """The scored result of `log`. `interval` False leaves Sharpe's bootstrap interval NaN, for a caller that
    bootstraps many results at once (`batch_scoring.sharpe_intervals`, the same figures)."""
    symbols = market.symbols
    closes, opens = market.close[log.bars], market.open[log.bars]
    equity, shares = log.equity, log.shares
    columns: dict[str, np.ndarray] = {
        "equity": equity,
        "returns": _simple_returns(equity, fill_missing=True),
        "benchmark_equity": bench_log.equity,
        "cash": log.cash,
        "commission": log.commission,
        "slippage": log.slippage,
        "borrow": log.borrow,
        "traded_value": np.abs(log.fill_qty * log.fill_price).sum(axis=1),
        "gross_exposure": np.abs(shares * closes).sum(axis=1),
    }
    for a, symbol in enumerate(symbols):
        columns[f"shares_{symbol}"] = shares[:, a]
        columns[f"weight_{symbol}"] = shares[:, a] * closes[:, a] / equity
    series = pd.DataFrame(columns, index=log.stamps)
    trades = round_trips(
        log.stamps, symbols, log.fill_qty, log.fill_price, opens, closes[-1], env_config.commission_bps / 1e4
    )
    periods_per_year = config.periods_per_year or market.periods_per_year
    returns = columns["returns"][1:]
    benchmark = _simple_returns(columns["benchmark_equity"], fill_missing=False)[1:]
    metrics = compute_metrics(
        returns,
        periods_per_year,
        risk_free=config.risk_free,
        benchmark=benchmark,
        positions=shares[1:],
        traded_value=columns["traded_value"][1:],
        nav=equity[:-1],  # the equity each bar's orders were sized on
        trade_pnl=trades.loc[~trades["open"], "pnl"].to_numpy(),
    )
    low, high = (
        bootstrap_sharpe_ci(
            returns,
            periods_per_year,
            config.risk_free,
            samples=config.bootstrap_samples,
            confidence=config.confidence,
            seed=config.seed,
        )
        if interval
        else (float("nan"), float("nan"))
    )
    stamps = market.timestamps
    judged = verdict(policy, config, market, span)
    return BacktestResult(
        policy=policy.name,
        policy_kind=policy.kind,
        dataset=data,
        period=config.period,
        period_start=stamps[span.start].isoformat(),
        period_end=stamps[span.stop - 1].isoformat(),
        timeseries=series,
        trades=trades,
        metrics=metrics.as_dict(),
        sharpe_ci=(low, high),
        costs=CostBreakdown(
            commission=float(series["commission"].sum()),
            slippage=float(series["slippage"].sum()),
            borrow=float(series["borrow"].sum()),
        ),
        config={"backtest": config.to_dict(), "env": env_config.to_dict(), "features": _features(policy).to_dict()},
        dataset_fingerprint=market.fingerprint,
        checkpoint_sha256=policy.checkpoint_sha256,
        in_sample=judged.in_sample,
        warnings=judged.warnings,
        training_period=policy.provenance.training_period if policy.provenance else None,
    )
