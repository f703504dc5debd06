"""A batch's checkpoint cells through the stacked sweep: one pass per market layout instead of one env per cell.

Stepping each cell's env in Python costs most of a batch; the sweep (`vectorized.sweep`) steps every checkpoint
on every market of the same layout with the same kernel, bit for bit. Its ledger gives each cell the fill log
its own env would have written, and from there a cell is assembled, scored and saved exactly as `backtest`
does it. A cell goes back to the per-cell path whenever the sweep cannot reproduce it: baselines (their rules
read the simulator, not an MLP), random-start episodes, continuous or multi-head actions, checkpoints that do
not load or do not fit the data (the per-cell run reports that error in its own words), shapes that cannot be
stacked, and accounts ruined on the way (an env stops there; the sweep steps on).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from ml.agents.policy import Policy
from ml.backtest.batch import Cell, CellOutcome, finish_cells
from ml.backtest.engine import (
    BacktestConfig,
    _env_config,
    _features,
    assemble_result,
    benchmark_log,
    resolve_period,
    split_of,
)
from ml.backtest.fork_map import fork_map, split_evenly
from ml.backtest.policies import BASELINE_PREFIX, ResolvedPolicy, resolve_policy
from ml.backtest.result import BacktestResult
from ml.backtest.vectorized import SweepResult, sweep
from ml.data.splits import Span
from ml.envs.config import EnvConfig
from ml.envs.execution_log import FillLog
from ml.envs.factory import prepared
from ml.envs.market import MarketData, observation_size
from rlops_core.errors import RlopsError


@dataclass(frozen=True)
class _Planned:
    """A cell the sweep can run, with everything `backtest` would have resolved for it."""

    cell: Cell
    resolved: ResolvedPolicy
    config: BacktestConfig
    env_config: EnvConfig
    market: MarketData
    market_key: str
    span: Span


@dataclass(frozen=True)
class _Job:
    planned: _Planned
    p: int  # the policy's row in its group's sweep
    m: int  # the market's column


def run_swept(cells: Sequence[Cell], workers: int, save_to: str | None) -> tuple[list[CellOutcome], list[Cell]]:
    """Outcomes of the cells the sweep ran (saved under `save_to` as `run_cell` saves them), and the cells left
    for the per-cell path."""
    groups: dict[str, list[_Planned]] = {}
    rest: list[Cell] = []
    resolved: dict[str, ResolvedPolicy | None] = {}
    markets: dict[tuple[str, int], MarketData] = {}
    for cell in cells:
        planned = _plan(cell, resolved, markets)
        if planned is None:
            rest.append(cell)
        else:
            groups.setdefault(_group_key(planned), []).append(planned)
    outcomes: list[CellOutcome] = []
    for group in groups.values():
        done, left = _run_group(group, workers, save_to)
        outcomes.extend(done)
        rest.extend(left)
    return outcomes, sorted(rest, key=lambda c: c.index)


def _plan(
    cell: Cell, resolved: dict[str, ResolvedPolicy | None], markets: dict[tuple[str, int], MarketData]
) -> _Planned | None:
    """The cell as the sweep would run it, or None for the per-cell path. Policies and markets are built once
    per batch (`resolved`, `markets`): a grid's cells share them many times over."""
    if cell.policy.startswith(BASELINE_PREFIX) or cell.params:
        return None
    config = cell.config()
    try:
        if cell.policy not in resolved:
            resolved[cell.policy] = None
            resolved[cell.policy] = resolve_policy(cell.policy)
        policy = resolved[cell.policy]
        if policy is None:
            return None
        env_config = _env_config(policy, config)
        features = _features(policy)
        split = split_of(policy, config)
        data = prepared(cell.dataset, features, split)
        span = resolve_period(data, cell.period)
        market_key = json.dumps(
            [cell.dataset, cell.period, features.to_dict(), split.to_dict()], sort_keys=True, default=str
        )
        if (market_key, env_config.window) not in markets:
            markets[market_key, env_config.window] = data.market(span, env_config.window)
        market = markets[market_key, env_config.window]
    except Exception:  # the per-cell run meets the same error and reports it as `backtest` words it
        return None
    spec = getattr(policy.loaded, "spec", None)
    if (
        spec is None
        or not spec.is_discrete
        or spec.action_nvec
        or env_config.action_mode != "discrete"
        or env_config.episode_length is not None
        or observation_size(market, env_config) != policy.obs_dim
    ):
        return None
    return _Planned(cell, policy, config, env_config, market, market_key, span)


def _group_key(planned: _Planned) -> str:
    """Cells that one sweep can run together: one environment, markets of one layout, one benchmark."""
    market, config = planned.market, planned.config
    layout = [market.first_decision, market.last_bar, len(market.timestamps), market.num_assets]
    return json.dumps(
        [planned.env_config.to_dict(), layout, planned.resolved.obs_dim, config.benchmark, config.seed],
        sort_keys=True,
        default=str,
    )


def _run_group(group: list[_Planned], workers: int, save_to: str | None) -> tuple[list[CellOutcome], list[Cell]]:
    policies = list(dict.fromkeys(planned.cell.policy for planned in group))
    markets = {planned.market_key: planned.market for planned in group}
    market_keys = list(markets)
    try:
        result = sweep(
            [_loaded(group, name) for name in policies],
            list(markets.values()),
            group[0].env_config,
            workers=workers,
            ledger=True,
            exact=True,
        )
    except RlopsError:  # e.g. networks of different shapes: each cell runs on its own instead
        return [], [planned.cell for planned in group]
    jobs, left = [], []
    for planned in group:
        p, m = policies.index(planned.cell.policy), market_keys.index(planned.market_key)
        if result.solvent[p, m]:
            jobs.append(_Job(planned, p, m))
        else:
            left.append(planned.cell)
    # Jobs sorted by market, so each worker runs the benchmark of as few markets as it can.
    jobs.sort(key=lambda job: (job.m, job.planned.cell.index))
    parts = fork_map(lambda chunk: _assemble_chunk(chunk, result, save_to), split_evenly(jobs, workers))
    return [outcome for part in parts for outcome in part], left


def _loaded(group: list[_Planned], name: str) -> Policy:
    loaded = next(planned.resolved.loaded for planned in group if planned.cell.policy == name)
    assert loaded is not None  # `_plan` keeps only checkpoints, which always bring their loaded policy
    return loaded


def _assemble_chunk(jobs: Sequence[_Job], result: SweepResult, save_to: str | None) -> list[CellOutcome]:
    """Each job's result as `backtest` assembles it from its env's log, saved as `run_cell` saves it; Sharpe's
    bootstrap intervals are drawn for the whole chunk at once (`batch_scoring`), with the same figures."""
    assert result.ledger is not None
    benchmarks: dict[int, FillLog] = {}
    scored: list[tuple[_Planned, BacktestResult | Exception]] = []
    for job in jobs:
        planned = job.planned
        try:
            if job.m not in benchmarks:
                benchmarks[job.m] = benchmark_log(planned.market, planned.env_config, planned.config)
            log = result.ledger.fill_log(job.p, job.m, result.equity[job.p, job.m], planned.market)
            backtest = assemble_result(
                planned.resolved, planned.cell.dataset, planned.config, planned.env_config, planned.market, log,
                benchmarks[job.m], planned.span, interval=False,
            )  # fmt: skip
            scored.append((planned, backtest))
        except Exception as exc:  # recorded in the leaderboard, as `run_cell` records it
            scored.append((planned, exc))
    return finish_cells([(planned.cell, done) for planned, done in scored], save_to)
