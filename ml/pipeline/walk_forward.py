"""Walk-forward evaluation: retrain before each fold of the test split, score on the fold, stitch the folds.

The test split is cut into K consecutive folds. For fold k every algorithm is refitted (the tuned configuration,
or one tuned again on the fold's own train and validation bars) on the bars before the fold less the embargo,
and then scored on the fold alone, as are the baselines. Each fold is its own split (a `SplitConfig` with dates),
so the environments, checkpoints and backtests of a fold are the ordinary ones: a fold's training market holds no
bar at or after its embargo gap, and a backtest of a fold's checkpoint scores that fold. The out-of-sample equity
is the folds' returns chained (each fold starts flat with the same cash, so levels do not join; returns do).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml.data import storage
from ml.data.splits import MIN_PERIOD_BARS, Fold, SplitConfig, walk_forward
from rlops_core.errors import RlopsError

if TYPE_CHECKING:
    from ml.backtest.result import BacktestResult
    from ml.pipeline.stages import StageContext

FOLDS_FILE = "folds.csv"
EQUITY_FILE = "equity.csv"
FOLDER = "walk_forward"


@dataclass(frozen=True)
class FoldPlan:
    fold: Fold
    split: SplitConfig


def plan_folds(
    timestamps: pd.DatetimeIndex, split: SplitConfig, warmup: int, folds: int, train_bars: int | None
) -> list[FoldPlan]:
    """The K folds tiling the end of the test split, each with the split its models are trained and scored under.

    A fold's validation starts at the split's train share of the bars before it, so tuning on a fold keeps the
    proportions chosen for the whole run; the embargo is the run's own."""
    whole = split.resolve(timestamps, warmup)
    test = whole.test
    size = len(test) // folds
    if size < MIN_PERIOD_BARS:
        raise RlopsError(
            f"walk-forward: {folds} folds of the {len(test)}-bar test split leave {size} bar(s) per fold; "
            f"each needs at least {MIN_PERIOD_BARS} (use fewer folds or an earlier --test-start)"
        )
    share = split.fractions[0] / (split.fractions[0] + split.fractions[1])
    plans = []
    for fold in walk_forward(test.stop, folds, size, whole.embargo, train_bars):
        before = fold.test.start - fold.train.start
        validation = fold.train.start + int(before * share)
        plans.append(
            FoldPlan(
                fold,
                SplitConfig(
                    validation_start=timestamps[validation].isoformat(),
                    test_start=timestamps[fold.test.start].isoformat(),
                    fractions=split.fractions,
                    embargo=whole.embargo,
                    train_start=timestamps[fold.train.start].isoformat() if train_bars is not None else None,
                    test_end=timestamps[fold.test.stop - 1].isoformat(),
                ),
            )
        )
    return plans


def stitch(returns: list[pd.Series], initial: float) -> pd.Series:
    """One equity curve from the folds' per-bar returns (each fold's first row is its starting point, return 0):
    the folds' returns chained, starting from `initial` at the first fold's start."""
    start = returns[0].index[:1]
    chained = pd.concat([r.iloc[1:] for r in returns])
    equity = initial * np.cumprod(1.0 + chained.to_numpy())
    return pd.Series(np.concatenate([[initial], equity]), index=start.append(chained.index), name="equity")


def run_walk_forward(ctx: StageContext, checkpoints: dict[str, str]) -> dict[str, Any]:
    """Every fold trained and scored; writes folds.csv and equity.csv under walk_forward/ and returns the per-fold
    and overall metrics for the stage's result."""
    from ml.backtest.engine import BacktestConfig, backtest
    from ml.backtest.metrics import compute_metrics
    from ml.data.features import FeatureConfig
    from ml.pipeline.stages import load_dataset

    config = ctx.config
    dataset = ctx.input_results["data"]["store"]
    bars = load_dataset(dataset)
    warmup = FeatureConfig().warmup
    section = config.walk_forward
    stamps = bars.panel().timestamps
    plans = plan_folds(stamps, config.split, warmup, section.folds, section.train_bars)
    policies = [*checkpoints, *config.baselines]
    rows: list[dict[str, Any]] = []
    retunes: list[dict[str, Any]] = []
    returns: dict[str, list[pd.Series]] = {name: [] for name in policies}
    initial = math.nan
    for plan in plans:
        fold, where = plan.fold, storage.join(ctx.output, FOLDER, f"fold{plan.fold.index}")
        ctx.say(
            f"walk-forward fold {fold.index + 1}/{len(plans)}: train {stamps[fold.train.start].date()} .. "
            f"{stamps[fold.train.stop - 1].date()}, test {stamps[fold.test.start].date()} .. "
            f"{stamps[fold.test.stop - 1].date()}"
        )
        trained: dict[str, str] = {}
        for algo in checkpoints:
            trained[algo], tuned = _refit(ctx, algo, plan, where)
            if tuned is not None:
                retunes.append(tuned)
        candidates = [
            *((algo, path) for algo, path in trained.items()),
            *((b, f"baseline:{b}") for b in config.baselines),
        ]
        for name, policy in candidates:
            result = backtest(
                policy,
                dataset,
                BacktestConfig(period="test", env=dict(config.env), split=plan.split.to_dict(), seed=config.seed),
            )
            _check_span(result, plan, stamps)
            returns[name].append(result.returns)
            initial = float(result.equity.iloc[0])
            rows.append(_row(fold, name, result, stamps))
    periods_per_year = bars.periods_per_year
    curves = {name: stitch(series, initial) for name, series in returns.items()}
    overall = []
    for name, curve in curves.items():
        metrics = compute_metrics(curve.pct_change().to_numpy()[1:], periods_per_year).as_dict()
        overall.append(
            {
                "policy": name,
                "sharpe": float(metrics["sharpe"]),
                "total_return": float(metrics["total_return"]),
                "max_drawdown": float(metrics["max_drawdown"]),
                "final_equity": float(curve.iloc[-1]),
            }
        )
    equity = pd.DataFrame(curves)
    equity.index.name = "timestamp"
    # Each stitched row's fold: the first fold's starting point, then each fold's own bars.
    first = next(iter(returns.values()))
    equity.insert(0, "fold", [0, *(k for k, series in enumerate(first) for _ in range(len(series) - 1))])
    folder = storage.join(ctx.output, FOLDER)
    storage.write_bytes(storage.join(folder, FOLDS_FILE), pd.DataFrame(rows).to_csv(index=False).encode())
    storage.write_bytes(storage.join(folder, EQUITY_FILE), equity.to_csv().encode())
    return {
        "folds": section.folds,
        "train_bars": section.train_bars,
        "tuned_per_fold": section.tune,
        # Each fold's tuning trials, which the backtest stage counts in its deflated Sharpe (trial_count).
        "retunes": retunes,
        "embargo": plans[0].split.embargo,
        "per_fold": rows,
        "overall": sorted(overall, key=lambda r: -r["sharpe"] if math.isfinite(r["sharpe"]) else math.inf),
        "equity": storage.join(folder, EQUITY_FILE),
        "table": storage.join(folder, FOLDS_FILE),
    }


def _check_span(result: BacktestResult, plan: FoldPlan, stamps: pd.DatetimeIndex) -> None:
    # A fold scored on other bars than its own would stitch into a curve that is not out-of-sample.
    if pd.Timestamp(result.period_start) != stamps[plan.fold.test.start]:
        raise RlopsError(f"walk-forward fold {plan.fold.index}: scored from {result.period_start}, not its own start")


def _row(fold: Fold, name: str, result: BacktestResult, stamps: pd.DatetimeIndex) -> dict[str, Any]:
    return {
        "fold": fold.index,
        "policy": name,
        "train_start": stamps[fold.train.start].isoformat(),
        "train_end": stamps[fold.train.stop - 1].isoformat(),
        "test_start": result.period_start,
        "test_end": result.period_end,
        "sharpe": float(result.metrics["sharpe"]),
        "total_return": float(result.metrics["total_return"]),
        "max_drawdown": float(result.metrics["max_drawdown"]),
    }


def _refit(ctx: StageContext, algo: str, plan: FoldPlan, where: str) -> tuple[str, dict[str, Any] | None]:
    """The fold's checkpoint of `algo`: the run's tuned configuration (or one tuned on this fold) refitted on the
    fold's train + validation bars, which end an embargo before the fold; and the fold's tuning record, if tuned."""
    from ml.agents.config import A3CConfig, AgentConfig, PPOConfig, config_class, from_mapping
    from ml.agents.env_sources import trading_source
    from ml.agents.train import SMOKE_OVERRIDES, TrainRequest, run_training

    config = ctx.config
    dataset = ctx.input_results["data"]["store"]
    final = ctx.input_results["train"][algo]
    values, env = dict(final["config"]), dict(final["env"])
    tuned = None
    if config.walk_forward.tune:
        best, tuned = _tune_fold(ctx, algo, plan, where)
        # The run's own refit budget (ml.pipeline.budget), so a fold's refit trains as long as the final one.
        values = {**best["config"], "total_timesteps": final["config"]["total_timesteps"], "seed": config.seed}
        if config.smoke:
            values.update(SMOKE_OVERRIDES[algo])
        env = {**best.get("env", {}), **config.env}
    cls = config_class(algo)
    agent: AgentConfig = from_mapping(PPOConfig, values) if cls is PPOConfig else from_mapping(A3CConfig, values)
    source = trading_source(dataset, "train+validation", env, split=plan.split.to_dict())
    remote = storage.is_s3(ctx.output)
    local = Path(tempfile.mkdtemp(prefix="rlops-wf-")) if remote else Path(where)
    run_dir = local / algo
    if run_dir.exists():
        storage.remove_tree(run_dir)
    result = run_training(TrainRequest(algo, agent, source, run_dir, show_progress=False))
    if result.checkpoint is None:
        raise RlopsError(f"walk-forward fold {plan.fold.index}: {algo} wrote no checkpoint")
    if not remote:
        return str(result.checkpoint), tuned
    storage.copy_tree(run_dir, storage.join(where, algo))
    return storage.join(where, algo, str(result.checkpoint.relative_to(run_dir))), tuned


def _tune_fold(ctx: StageContext, algo: str, plan: FoldPlan, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Tuning on the fold's own validation bars (which end an embargo before the fold): its best configuration, and
    the record of its trials (each one's validation Sharpe, as the tune stage keeps them)."""
    from ml.pipeline.stages import tune_settings
    from ml.tune.runner import run_tune
    from ml.tune.trials import scored_sharpes

    settings = replace(
        tune_settings(ctx.config, algo, ctx.input_results["data"]["store"], _absolute(storage.join(where, "tune"))),
        split=plan.split.to_dict(),
    )
    outcome = run_tune(settings, say=ctx.say)
    if outcome.best_config is None:
        raise RlopsError(f"walk-forward fold {plan.fold.index}: no {algo} trial finished; see {outcome.experiment}")
    board = outcome.leaderboard
    record = {
        "fold": plan.fold.index,
        "algo": algo,
        "experiment": outcome.experiment,
        "trials": len(board),
        "trial_sharpes": scored_sharpes(board),
    }
    return outcome.best_config, record


def _absolute(location: str) -> str:
    return location if storage.is_s3(location) else str(Path(location).resolve())
