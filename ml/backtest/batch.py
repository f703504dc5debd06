"""Batch backtests: policies x parameter sets x datasets x periods, in parallel, into a ranked leaderboard.

A cell that fails is recorded with its error and never stops the batch. Cells run in a process pool or as
tasks on a (local or existing) Ray cluster.
"""

from __future__ import annotations

import io
import itertools
import json
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from ml.backtest.baselines import BASELINE_PARAMS
from ml.backtest.batch_scoring import IntervalRequest, sharpe_intervals
from ml.backtest.engine import BacktestConfig, backtest
from ml.backtest.fork_map import fork_map, split_evenly
from ml.backtest.metrics import METRIC_NAMES
from ml.backtest.overfitting import assess
from ml.backtest.policies import BASELINE_PREFIX, policy_params
from ml.backtest.result import BacktestResult
from ml.backtest.trial_count import SearchTrials, count_trials
from ml.data import storage
from ml.data.splits import SplitConfig
from ml.envs.config import EnvConfig
from rlops_core.errors import RlopsError

Executor = Literal["process", "ray"]
# What a leaderboard can be ranked by: every metric, and the ends of Sharpe's bootstrap interval.
RANKABLE: tuple[str, ...] = (*METRIC_NAMES, "sharpe_ci_low", "sharpe_ci_high")


@dataclass(frozen=True)
class Grid:
    """The grid file's schema. `periods` items may be `wf:N`, which expands into the N walk-forward windows.

    Every key is checked, down to each `env` setting and each `params` name, because a misspelt key that
    were silently ignored would run the defaults under a label that says otherwise. A parameter set applies only
    to the policies that read it: the others run once, not once per set.
    """

    policies: list[str]
    datasets: list[str] = field(default_factory=lambda: ["sp500"])
    periods: list[str] = field(default_factory=lambda: ["test"])
    env: list[dict[str, Any]] = field(default_factory=lambda: [{}])
    params: list[dict[str, Any]] = field(default_factory=lambda: [{}])
    metric: str = "sharpe"
    executor: Executor = "process"
    workers: int = 2
    seed: int = 0
    risk_free: float = 0.0
    bootstrap_samples: int = 1000
    # The train / validation / test cut (SplitConfig keys); None: each checkpoint's own, the default for baselines.
    split: dict[str, Any] | None = None
    # Score checkpoints on dates they trained on, each such cell labelled in_sample (refused otherwise).
    allow_in_sample: bool = False

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise RlopsError(f"grid: {problem}")

    def _problem(self) -> str | None:
        """The first thing wrong with the grid, named by its key path (`env[1].comission_bps`), or None."""
        for name in ("policies", "datasets", "periods"):
            items = getattr(self, name)
            if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
                return f"{name} must be a list of strings (got {items!r})"
        if not self.policies:
            return "'policies' must list at least one policy"
        for name in ("env", "params"):
            items = getattr(self, name)
            if not isinstance(items, list) or not items or not all(isinstance(item, dict) for item in items):
                return f"{name} must be a mapping or a non-empty list of mappings (got {items!r})"
        known_env = set(EnvConfig.__dataclass_fields__)
        for i, overrides in enumerate(self.env):
            for key in sorted(set(overrides) - known_env):
                return f"env[{i}].{key}: unknown environment setting; known: {', '.join(sorted(known_env))}"
        taken = {name for policy in self.policies for name in policy_params(policy)}
        for i, values in enumerate(self.params):
            for key in sorted(set(values) - taken):
                readers = "; ".join(f"{b} takes {', '.join(p)}" for b, p in BASELINE_PARAMS.items())
                return f"params[{i}].{key}: no policy in this grid takes it ({readers}; other policies take none)"
        for item in self.periods:
            if item.startswith("wf:") and "/" not in item and not (item[3:].isdigit() and int(item[3:]) >= 1):
                return f"periods: '{item}' must read wf:N with N >= 1 (or wf:K/N for one window)"
        # Checked before any cell runs: a misspelt metric would otherwise cost the whole batch to find out.
        if self.metric not in RANKABLE:
            return f"metric: unknown ranking metric '{self.metric}'; metrics: {', '.join(RANKABLE)}"
        if self.executor not in ("process", "ray"):
            return f"executor must be process or ray (got '{self.executor}')"
        if self.workers < 1:
            return f"workers must be >= 1 (got {self.workers})"
        if self.split is not None:
            try:
                SplitConfig.from_dict(self.split)
            except RlopsError as exc:
                return str(exc)
        return None

    @classmethod
    def from_yaml(cls, path: str) -> Grid:
        try:
            data = yaml.safe_load(storage.read_bytes(path))
        except yaml.YAMLError as exc:
            raise RlopsError(f"{path}: not valid YAML ({exc})") from exc
        if not isinstance(data, dict):
            raise RlopsError(f"{path}: a grid file is a mapping of settings")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise RlopsError(
                f"{path}: unknown grid key(s) {', '.join(unknown)}; known: {', '.join(cls.__dataclass_fields__)}"
            )
        for name in ("env", "params"):  # one mapping is shorthand for a list of one
            if isinstance(data.get(name), dict):
                data[name] = [data[name]]
        try:
            return cls(**data)
        except TypeError as exc:
            raise RlopsError(f"{path}: {exc}") from exc
        except RlopsError as exc:
            raise RlopsError(f"{path}: {str(exc).removeprefix('grid: ')}") from exc

    def cells(self) -> list[Cell]:
        periods = [p for item in self.periods for p in _expand_period(item)]
        combos: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = []
        for policy in self.policies:
            takes = policy_params(policy)
            # The parameter sets as this policy sees them: a set differing only in what it ignores is the same run.
            seen: dict[str, dict[str, Any]] = {}
            for values in self.params:
                own = {key: value for key, value in values.items() if key in takes}
                seen.setdefault(json.dumps(own, sort_keys=True, default=str), own)
            combos.extend(itertools.product([policy], self.datasets, periods, self.env, seen.values()))
        return [
            Cell(
                i,
                policy,
                dataset,
                period,
                env,
                params,
                self.seed,
                self.risk_free,
                self.bootstrap_samples,
                self.split,
                self.allow_in_sample,
            )
            for i, (policy, dataset, period, env, params) in enumerate(combos)
        ]


def _expand_period(item: str) -> list[str]:
    if item.startswith("wf:") and "/" not in item:
        count = int(item[3:])
        return [f"wf:{k}/{count}" for k in range(count)]
    return [item]


@dataclass(frozen=True)
class Cell:
    index: int
    policy: str
    dataset: str
    period: str
    env: dict[str, Any]
    params: dict[str, Any]
    seed: int
    risk_free: float
    bootstrap_samples: int
    split: dict[str, Any] | None = None
    allow_in_sample: bool = False

    def config(self) -> BacktestConfig:
        return BacktestConfig(
            period=self.period,
            env=self.env,
            split=self.split,
            params=self.params,
            seed=self.seed,
            risk_free=self.risk_free,
            bootstrap_samples=self.bootstrap_samples,
            allow_in_sample=self.allow_in_sample,
        )


@dataclass(frozen=True)
class CellOutcome:
    cell: Cell
    status: Literal["ok", "failed"]
    error: str
    metrics: dict[str, float]
    sharpe_ci: tuple[float, float]
    in_sample: bool = False
    warnings: tuple[str, ...] = ()
    returns: tuple[float, ...] = ()  # per bar after the start: a column of the batch's PBO matrix

    @classmethod
    def finished(cls, cell: Cell, result: BacktestResult, save_to: str | None) -> CellOutcome:
        """The outcome of a cell whose backtest gave `result`, saved under `save_to` first when given."""
        if save_to is not None:
            result.save(storage.join(save_to, "cells", f"{cell.index:04d}"))
        return cls(
            cell, "ok", "", result.metrics, result.sharpe_ci, bool(result.in_sample), result.warnings,
            _bar_returns(result),
        )  # fmt: skip

    @classmethod
    def failed(cls, cell: Cell, exc: Exception) -> CellOutcome:
        """The type and message (the traceback's last line when there is no message): the leaderboard's error."""
        detail = str(exc) or traceback.format_exception_only(exc)[-1].strip()
        return cls(cell, "failed", f"{type(exc).__name__}: {detail}", {}, (float("nan"), float("nan")))


def run_cell(cell: Cell, save_to: str | None = None) -> CellOutcome:
    """Never raises: a failure is the outcome's status and error (the type and message, traceback's last line)."""
    try:
        return CellOutcome.finished(cell, backtest(cell.policy, cell.dataset, cell.config()), save_to)
    except Exception as exc:  # recorded in the leaderboard, which is how a batch reports failures
        return CellOutcome.failed(cell, exc)


def _run_process(cells: Sequence[Cell], workers: int, save_to: str | None) -> list[CellOutcome]:
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(run_cell, cells, itertools.repeat(save_to)))


def _run_forked(cells: Sequence[Cell], workers: int, save_to: str | None) -> list[CellOutcome]:
    """Baseline cells in forked workers, each cell's env on its own: a spawned pool re-imports the project in every
    worker (seconds, more than a pipeline's three baseline cells take), while a fork shares this process's imports.
    Baselines never call torch, whose thread pool is not safe to use across a fork."""
    parts = fork_map(lambda chunk: _baseline_chunk(chunk, save_to), split_evenly(cells, workers))
    return [outcome for part in parts for outcome in part]


def _baseline_chunk(cells: Sequence[Cell], save_to: str | None) -> list[CellOutcome]:
    scored: list[tuple[Cell, BacktestResult | Exception]] = []
    for cell in cells:
        try:
            scored.append((cell, backtest(cell.policy, cell.dataset, cell.config(), interval=False)))
        except Exception as exc:  # recorded in the leaderboard, as `run_cell` records it
            scored.append((cell, exc))
    return finish_cells(scored, save_to)


def finish_cells(scored: Sequence[tuple[Cell, BacktestResult | Exception]], save_to: str | None) -> list[CellOutcome]:
    """Cells scored without Sharpe's bootstrap interval (`interval=False`), each given the interval `backtest`
    would have drawn, all drawn at once (`batch_scoring`: the same figures), then saved as `run_cell` saves them."""
    requests = [_interval_request(cell, done) for cell, done in scored if not isinstance(done, Exception)]
    intervals = iter(sharpe_intervals(requests))
    outcomes = []
    for cell, scoring in scored:
        try:
            if isinstance(scoring, Exception):
                raise scoring
            interval = next(intervals)
            if isinstance(interval, Exception):
                raise interval
            outcomes.append(CellOutcome.finished(cell, replace(scoring, sharpe_ci=interval), save_to))
        except Exception as exc:  # recorded in the leaderboard, as `run_cell` records it
            outcomes.append(CellOutcome.failed(cell, exc))
    return outcomes


def _interval_request(cell: Cell, result: BacktestResult) -> IntervalRequest:
    """The bootstrap `backtest` would have run for this cell, with the engine's own arguments (the metrics keep the
    periods per year it annualised with)."""
    config = cell.config()
    return IntervalRequest(
        result.returns.to_numpy()[1:],
        result.metrics["periods_per_year"],
        config.risk_free,
        config.bootstrap_samples,
        config.confidence,
        config.seed,
    )


def _run_ray(cells: Sequence[Cell], workers: int, save_to: str | None, address: str | None) -> list[CellOutcome]:
    import ray

    from ml.tune.local_ray import init_local

    started = not ray.is_initialized()
    if started and address is None:
        init_local(workers, include_dashboard=False)
    elif started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        remote: Any = ray.remote(num_cpus=1)(run_cell)
        return list(ray.get([remote.remote(cell, save_to) for cell in cells]))
    finally:
        if started:
            ray.shutdown()


def _bar_returns(result: BacktestResult) -> tuple[float, ...]:
    return tuple(result.returns.to_numpy()[1:].tolist())  # the first row is the start, before any fill


@dataclass(frozen=True)
class BatchResult:
    leaderboard: pd.DataFrame
    metric: str
    deflated_sharpe: float  # probability that the best cell's Sharpe beats luck across all trials
    trials: int  # every trial the deflated Sharpe counts: tuning trials before the batch, if any, plus its cells
    deflation: dict[str, Any] = field(default_factory=dict)  # `trial_count.count_trials`: N, variance, sources
    overfitting: dict[str, Any] = field(default_factory=dict)  # the cells' PBO, or why there is none

    def save(self, destination: str) -> None:
        frame = self.leaderboard
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        storage.write_bytes(storage.join(destination, "leaderboard.parquet"), buffer.getvalue())
        storage.write_bytes(storage.join(destination, "leaderboard.csv"), frame.to_csv(index=False).encode())
        storage.write_bytes(storage.join(destination, "leaderboard.md"), to_markdown(frame, self.metric).encode())
        summary = {
            "metric": self.metric,
            "deflated_sharpe": self.deflated_sharpe,
            "trials": self.trials,
            "deflation": self.deflation,
            "overfitting": self.overfitting,
        }
        storage.write_bytes(storage.join(destination, "batch.json"), json.dumps(summary, indent=2).encode())


def to_markdown(frame: pd.DataFrame, metric: str) -> str:
    columns = ["rank", "policy", "dataset", "period", "env", "params", "status", metric, "sharpe", "total_return",
               "max_drawdown", "error"]  # fmt: skip
    shown = frame[[c for c in dict.fromkeys(columns) if c in frame.columns]]  # the metric may be sharpe itself
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    for row in shown.itertuples(index=False):
        cells = [f"{v:.4f}" if isinstance(v, float) and not np.isnan(v) else ("" if v != v else str(v)) for v in row]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def leaderboard(outcomes: Sequence[CellOutcome], metric: str) -> pd.DataFrame:
    rows = []
    for outcome in outcomes:
        cell = outcome.cell
        rows.append(
            {
                "cell": cell.index,
                "policy": cell.policy,
                "dataset": cell.dataset,
                "period": cell.period,
                "env": json.dumps(cell.env, sort_keys=True),
                "params": json.dumps(cell.params, sort_keys=True),
                "status": outcome.status,
                "error": outcome.error,
                "in_sample": outcome.in_sample,
                "warnings": "; ".join(outcome.warnings),
                "sharpe_ci_low": outcome.sharpe_ci[0],
                "sharpe_ci_high": outcome.sharpe_ci[1],
                **outcome.metrics,
            }
        )
    frame = pd.DataFrame(rows)
    if metric not in frame.columns and any(o.status == "ok" for o in outcomes):
        raise RlopsError(f"unknown ranking metric '{metric}'; metrics: {', '.join(sorted(outcomes[0].metrics))}")
    if metric not in frame.columns:
        frame[metric] = np.nan
    ordered = frame.sort_values(["status", metric], ascending=[False, False], na_position="last", kind="stable")
    ordered = ordered.sort_values("status", key=lambda s: s.ne("ok"), kind="stable").reset_index(drop=True)
    ordered.insert(0, "rank", range(1, len(ordered) + 1))
    return ordered


def run_batch(
    grid: Grid,
    out: str | None = None,
    address: str | None = None,
    deflate: Callable[[pd.DataFrame], float] | None = None,
    per_cell: bool = False,
    search: SearchTrials | None = None,
) -> BatchResult:
    """Checkpoint cells that share a market layout run together as one stacked sweep (`swept_cells`), here,
    with the same results; the others, or every cell with `per_cell`, run one by one on the grid's executor.
    `search`: the tuning trials that chose the cells' agents, counted in the deflated Sharpe with the cells."""
    cells = grid.cells()
    outcomes: list[CellOutcome] = []
    if not per_cell:
        baselines = [cell for cell in cells if cell.policy.startswith(BASELINE_PREFIX)]
        cells = [cell for cell in cells if not cell.policy.startswith(BASELINE_PREFIX)]
        if cells:
            from ml.backtest.swept_cells import run_swept  # torch: a grid of baselines never needs it

            outcomes, cells = run_swept(cells, grid.workers, out)
        if grid.executor == "process":
            outcomes.extend(_run_forked(baselines, grid.workers, out))
        else:
            cells = [*cells, *baselines]
    if cells and grid.executor == "ray":
        outcomes.extend(_run_ray(cells, grid.workers, out, address))
    elif cells:
        outcomes.extend(_run_process(cells, grid.workers, out))
    # The leaderboard's ties keep the grid's order, so outcomes go in as the per-cell path gives them.
    return _rank(grid, sorted(outcomes, key=lambda o: o.cell.index), out, deflate, search)


def _rank(
    grid: Grid,
    outcomes: Sequence[CellOutcome],
    out: str | None,
    deflate: Callable[[pd.DataFrame], float] | None,
    search: SearchTrials | None = None,
) -> BatchResult:
    board = leaderboard(outcomes, grid.metric)
    ok = board[board["status"] == "ok"]
    deflation = count_trials(ok, search) if len(ok) else {}
    if deflate is not None and len(ok):
        deflation["deflated_sharpe"] = float(deflate(ok))
    dsr = float(deflation.get("deflated_sharpe", float("nan")))
    trials = int(deflation.get("n_trials", 0))
    result = BatchResult(board, grid.metric, dsr, trials, deflation, cells_overfitting(outcomes))
    if out is not None:
        result.save(out)
        storage.write_bytes(storage.join(out, "grid.json"), json.dumps(asdict(grid), indent=2).encode())
    return result


# --------------------------------------------------------------------------------------------------------------
# one cell per process: a cluster workflow fans the cells out as pods and fans their outcomes back in

OUTCOME_FILE = "outcome.json"


def _cell_folder(out: str, index: int) -> str:
    return storage.join(out, "cells", f"{index:04d}")


def grid_cell(grid: Grid, index: int) -> Cell:
    cells = grid.cells()
    if not 0 <= index < len(cells):
        raise RlopsError(f"grid has cells 0..{len(cells) - 1}; there is no cell {index}")
    return cells[index]


def run_one_cell(grid: Grid, index: int, out: str) -> CellOutcome:
    """Run one cell and keep its outcome next to its result, for `merge_cells` to rank."""
    outcome = run_cell(grid_cell(grid, index), out)
    record = {"status": outcome.status, "error": outcome.error, "metrics": outcome.metrics,
              "sharpe_ci": list(outcome.sharpe_ci), "in_sample": outcome.in_sample,
              "warnings": list(outcome.warnings)}  # fmt: skip
    storage.write_bytes(storage.join(_cell_folder(out, index), OUTCOME_FILE), json.dumps(record).encode())
    return outcome


def merge_cells(
    grid: Grid, out: str, deflate: Callable[[pd.DataFrame], float] | None = None, search: SearchTrials | None = None
) -> BatchResult:
    """The leaderboard of cells run one by one under `out`; a cell without an outcome counts as failed."""
    outcomes = []
    for cell in grid.cells():
        where = storage.join(_cell_folder(out, cell.index), OUTCOME_FILE)
        if not storage.exists(where):
            outcomes.append(CellOutcome(cell, "failed", f"no {OUTCOME_FILE} at {where}", {}, (np.nan, np.nan)))
            continue
        try:
            record = json.loads(storage.read_bytes(where))
            low, high = record["sharpe_ci"]
            outcomes.append(
                CellOutcome(
                    cell,
                    record["status"],
                    record["error"],
                    record["metrics"],
                    (low, high),
                    bool(record.get("in_sample", False)),
                    tuple(record.get("warnings", ())),
                    _saved_returns(_cell_folder(out, cell.index)) if record["status"] == "ok" else (),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise RlopsError(f"{where} is damaged ({exc}); rerun cell {cell.index}") from exc
    return _rank(grid, outcomes, out, deflate, search)


def _saved_returns(folder: str) -> tuple[float, ...]:
    """A cell's per-bar returns from its saved result; none when the result was not saved (PBO says so)."""
    if not storage.exists(storage.join(folder, "timeseries.parquet")):
        return ()
    return _bar_returns(BacktestResult.load(folder))


def cells_overfitting(outcomes: Sequence[CellOutcome]) -> dict[str, Any]:
    """PBO with the successful cells as configurations and their per-bar returns as the matrix, when every cell
    ran on the same bars; otherwise the reason there is none."""
    ok = [o for o in outcomes if o.status == "ok"]
    markets = {(o.cell.dataset, o.cell.period) for o in ok}
    if not ok:
        return {"pbo": None, "reason": "no cell finished"}
    if len(markets) > 1:
        return {"pbo": None, "reason": f"the cells span {len(markets)} (dataset, period) pairs; PBO needs one"}
    if any(not o.returns for o in ok):
        return {"pbo": None, "reason": "a successful cell has no saved returns"}
    if len({len(o.returns) for o in ok}) > 1:
        return {"pbo": None, "reason": "the cells' return series differ in length (different environments)"}
    matrix = np.array([o.returns for o in ok], dtype=np.float64).T
    if not np.isfinite(matrix).all():
        return {"pbo": None, "reason": "a cell's returns are not all finite"}
    return assess(matrix)


def deflated_sharpe_of(ok: pd.DataFrame) -> float:
    """The deflated Sharpe ratio of the best cell, given every successful cell as a trial."""
    from ml.backtest.stats import deflated_sharpe_for_trials

    return float(deflated_sharpe_for_trials(ok))


def default_out(grid_path: str) -> str:
    return str(Path("runs") / f"batch-{Path(grid_path).stem}")
