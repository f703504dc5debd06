"""The out-of-sample objective: markets built once in the driver, scored inside the trials.

The driver prepares the training market and the validation windows (the whole validation split, or K
consecutive windows of it for walk-forward scoring) and hands them to every trial with
``tune.with_parameters``: trials neither load the dataset nor can reach the test split, which no code here
ever asks for.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ml.agents.env_sources import MarketSource, trading_source
from ml.data.splits import Span
from ml.envs.config import EnvConfig
from ml.envs.market import MarketData
from rlops_core.errors import RlopsError

# A policy whose metric is undefined (NaN) must rank below every real score without breaking the schedulers.
WORST = 1e9
# The Sharpe interval is not part of the objective; the engine wants at least this many resamples.
_BOOTSTRAP_SAMPLES = 10


@dataclass(frozen=True)
class ValidationWindow:
    label: str
    span: Span
    market: MarketData


@dataclass(frozen=True)
class Payload:
    """What every trial needs, put in Ray's object store once."""

    source: MarketSource
    windows: tuple[ValidationWindow, ...]
    dataset: str
    metric: str
    mode: str


def validation_windows(dataset: str, source: MarketSource, folds: int) -> tuple[ValidationWindow, ...]:
    from ml.data.features import FeatureConfig
    from ml.data.splits import SplitConfig
    from ml.envs.factory import prepared

    features = FeatureConfig.from_dict(source.description.get("features"))
    data = prepared(dataset, features, SplitConfig.from_dict(source.description.get("split")))
    validation = data.split.part("validation")
    window = source.env_config.window
    if folds == 1:
        return (ValidationWindow("validation", validation, data.market(validation, window)),)
    size = len(validation) // folds
    if size < 2:
        raise RlopsError(f"--folds {folds} leaves fewer than 2 bars per window of the {len(validation)}-bar validation")
    spans = [Span(validation.start + k * size, validation.start + (k + 1) * size) for k in range(folds)]
    return tuple(ValidationWindow(f"fold{k}", s, data.market(s, window)) for k, s in enumerate(spans))


def build_payload(
    dataset: str, env: dict[str, Any], folds: int, metric: str, mode: str, split: dict[str, Any] | None = None
) -> Payload:
    source = trading_source(dataset, "train", env, split=split)
    return Payload(source, validation_windows(dataset, source, folds), dataset, metric, mode)


def score(policy: Any, payload: Payload) -> tuple[float, dict[str, float | str]]:
    """The mean of the metric over the validation windows, each window's metric (prefixed) when there are several,
    the mean validation Sharpe (``val_sharpe``, when the metric is not Sharpe itself) and every validation bar's
    return (``val_returns``, a JSON list over the windows in order): what the pipeline's trial count and PBO read.
    """
    from ml.backtest.engine import BacktestConfig, assemble_result, benchmark_log, run_env
    from ml.backtest.policies import resolve_policy
    from ml.envs.trading_env import TradingEnv

    resolved = resolve_policy(policy)
    env_config: EnvConfig = payload.source.env_config
    values: list[float] = []
    details: dict[str, float | str] = {}
    sharpes: list[float] = []
    returns: list[float] = []
    for window in payload.windows:
        env = TradingEnv(window.market, env_config, record=True)
        log = run_env(env, resolved.build(env.sim))
        config = BacktestConfig(period=window.label, bootstrap_samples=_BOOTSTRAP_SAMPLES)
        bench_log = benchmark_log(window.market, env_config, config)
        # The engine's own assembly, so a trial's score is the number `rlops backtest` prints for that window.
        result = assemble_result(
            resolved, payload.dataset, config, env_config, window.market, log, bench_log, window.span
        )
        values.append(float(result.metrics[payload.metric]))
        sharpes.append(float(result.metrics["sharpe"]))
        returns.extend(result.returns.to_numpy()[1:].tolist())  # the first row is the start, before any fill
        if len(payload.windows) > 1:
            details[f"val_{payload.metric}_{window.label}"] = values[-1]
    if payload.metric != "sharpe":
        details["val_sharpe"] = sum(sharpes) / len(sharpes)
    # A string, not a list: Tune would log a list as a TensorBoard histogram on every report.
    details["val_returns"] = json.dumps(returns)
    mean = sum(values) / len(values)
    if not math.isfinite(mean):
        mean = -WORST if payload.mode == "max" else WORST
    return mean, details
