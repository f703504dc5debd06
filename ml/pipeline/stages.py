"""The stage contract (names, inputs, outputs) and what each stage does.

A stage reads only the outputs of the stages it names as inputs and writes only under its own output
location, ending with `stage.json`: its content key (a hash of its settings and its inputs' keys), its inputs
and a summary of what it produced. The key chains through the stages, so a stage whose inputs and settings
did not change is skipped, and a change anywhere reruns exactly what depends on it.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, is_dataclass, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.data import storage
from ml.data.bars import Bars
from ml.data.fingerprint import labelled
from ml.pipeline.config import PipelineConfig
from rlops_core.errors import RlopsError

if TYPE_CHECKING:
    from ml.pipeline.budget import RefitBudget
    from ml.tune.settings import TuneSettings

STAGE_FILE = "stage.json"


@dataclass(frozen=True)
class StageContext:
    config: PipelineConfig
    inputs: dict[str, str]  # input stage name -> its output location
    input_results: dict[str, dict[str, Any]]  # input stage name -> the `result` of its stage.json
    output: str
    say: Callable[[str], None]


@dataclass(frozen=True)
class Stage:
    name: str
    inputs: tuple[str, ...]
    produces: str  # what the output holds, for `rlops pipeline stages` and the workflows that chain them
    settings: tuple[str, ...]  # the config fields that change this stage's result
    run: Callable[[StageContext], dict[str, Any]]


def read_stage(location: str) -> dict[str, Any] | None:
    where = storage.join(location, STAGE_FILE)
    if not storage.exists(where):
        return None
    try:
        data: dict[str, Any] = json.loads(storage.read_bytes(where))
    except json.JSONDecodeError as exc:
        raise RlopsError(f"{where} is damaged ({exc}); rerun that stage with --force") from exc
    return data


def stage_key(stage: Stage, config: PipelineConfig, input_keys: dict[str, str], extra: str = "") -> str:
    settings = {name: _plain(getattr(config, name)) for name in stage.settings}
    text = json.dumps({"stage": stage.name, "settings": settings, "inputs": input_keys, "extra": extra},
                      sort_keys=True, default=str)  # fmt: skip
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _plain(value: Any) -> Any:
    """A setting as JSON sees it: a section such as `split` by its keys, so the key does not hang on a repr."""
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


def write_stage(location: str, stage: Stage, key: str, input_keys: dict[str, str], result: dict[str, Any]) -> None:
    record = {
        "stage": stage.name,
        "key": key,
        "inputs": input_keys,
        "result": result,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    storage.write_bytes(storage.join(location, STAGE_FILE), json.dumps(record, indent=2, default=str).encode())


# --------------------------------------------------------------------------------------------------------------
# the stages


@cache
def load_dataset(spec: str) -> Bars:
    """The dataset read once per process: the data stage's key and its work both need it."""
    from ml.data.resolve import resolve_dataset

    return resolve_dataset(spec)


def run_data(ctx: StageContext) -> dict[str, Any]:
    """Load and validate the dataset (named, file, store or s3://) and write it as the run's own store."""
    from ml.data.store import write_store

    bars = load_dataset(ctx.config.dataset)
    result = write_store(bars, storage.join(ctx.output, "store"), [ctx.config.dataset])
    frame = bars.frame
    ctx.say(f"{len(frame)} bars of {', '.join(bars.symbols)} validated; {len(bars.gaps)} gap(s) reported")
    return {
        "store": storage.join(ctx.output, "store"),
        "fingerprint": result.manifest.fingerprint,
        "bars": len(frame),
        "symbols": list(bars.symbols),
        "start": frame["timestamp"].min().isoformat(),
        "end": frame["timestamp"].max().isoformat(),
        "gaps": [str(g) for g in bars.gaps],
    }


def _absolute(location: str) -> str:
    return location if storage.is_s3(location) else str(Path(location).resolve())


def tune_settings(config: PipelineConfig, algo: str, dataset: str, root: str) -> TuneSettings:
    """The tuning run of `algo` as this pipeline configures it, with its experiment under `root`."""
    from ml.tune.settings import TuneSettings

    return TuneSettings(
        algo=algo,
        search=config.search,
        samples=config.samples,
        scheduler=config.scheduler,
        dataset=dataset,
        metric=config.metric,
        iterations=config.iterations,
        steps_per_iteration=config.steps_per_iteration,
        storage=root,
        name=algo,
        env=dict(config.env),
        split=config.split.to_dict(),
        seed=config.seed,
        smoke=config.smoke,
        address=config.ray_address,
    )


def run_tune(ctx: StageContext) -> dict[str, Any]:
    """Tune each algorithm on the validation split (Ray Tune); the test split is never read here."""
    from ml.tune.runner import resume_tune, run_tune
    from ml.tune.settings import SETTINGS_FILE
    from ml.tune.trainable import metric_key
    from ml.tune.trials import scored_sharpes

    config = ctx.config
    dataset = ctx.input_results["data"]["store"]
    root = _absolute(ctx.output)
    outcomes: dict[str, Any] = {}
    for algo in config.algos:
        settings = tune_settings(config, algo, dataset, root)
        experiment = storage.join(root, algo)
        # An experiment without this stage's stage.json was interrupted: continue it rather than start over.
        partial = storage.exists(storage.join(experiment, SETTINGS_FILE))
        ctx.say(f"tuning {algo}: {config.samples} trial(s), search {config.search}, scheduler {config.scheduler}")
        # A retried cluster step resumes on the Ray cluster it runs in now, not the one that started the experiment.
        if partial:
            outcome = resume_tune(experiment, say=ctx.say, address=config.ray_address)
        else:
            outcome = run_tune(settings, say=ctx.say)
        if outcome.best_config is None:
            raise RlopsError(f"stage tune: no {algo} trial finished with a {config.metric} score; see {experiment}")
        board = outcome.leaderboard
        outcomes[algo] = {
            "experiment": outcome.experiment,
            "best_config": outcome.best_config,
            "trials": len(board),
            "best_score": float(board.iloc[0][f"best_{metric_key(config.metric)}"]),
            # Every trial that was scored, for the deflated Sharpe's count and variance (trial_count).
            "trial_sharpes": scored_sharpes(board),
            "overfitting": outcome.overfitting,
        }
    return outcomes


def run_train(ctx: StageContext) -> dict[str, Any]:
    """Refit each algorithm's best configuration on train + validation; the test split stays untouched."""
    from ml.agents.config import A3CConfig, AgentConfig, PPOConfig, config_class, from_mapping
    from ml.agents.env_sources import trading_source
    from ml.agents.train import SMOKE_OVERRIDES, TrainRequest, run_training

    config = ctx.config
    dataset = ctx.input_results["data"]["store"]
    budget = _refit_budget(config, dataset)
    ctx.say(f"training budgets: {budget.describe()}")
    trained: dict[str, Any] = {}
    for algo in config.algos:
        best = ctx.input_results["tune"][algo]["best_config"]
        values = {**best["config"], "total_timesteps": budget.timesteps, "seed": config.seed}
        if config.smoke:
            values.update(SMOKE_OVERRIDES[algo])
        cls = config_class(algo)
        agent: AgentConfig = from_mapping(PPOConfig, values) if cls is PPOConfig else from_mapping(A3CConfig, values)
        env = {**best.get("env", {}), **config.env}
        source = trading_source(dataset, "train+validation", env, split=config.split.to_dict())
        local = Path(ctx.output) if not storage.is_s3(ctx.output) else Path(tempfile.mkdtemp(prefix="rlops-train-"))
        run_dir = local / algo
        if run_dir.exists():  # an interrupted earlier attempt: start the refit again from scratch
            storage.remove_tree(run_dir)
        ctx.say(f"retraining {algo} on train + validation for {agent.total_timesteps:,} steps")
        result = run_training(TrainRequest(algo, agent, source, run_dir, show_progress=True))
        if result.checkpoint is None:
            raise RlopsError(f"stage train: {algo} wrote no checkpoint")
        checkpoint = str(result.checkpoint)
        if storage.is_s3(ctx.output):
            storage.copy_tree(run_dir, storage.join(ctx.output, algo))
            checkpoint = storage.join(ctx.output, algo, str(result.checkpoint.relative_to(run_dir)))
        trained[algo] = {
            "checkpoint": checkpoint,
            "steps": result.global_step,
            "mean_return": result.mean_return,
            # Both budgets together: what the configuration was tuned at and what its refit trained for.
            "budget": (budget if not config.smoke else _smoke(budget, agent.total_timesteps)).to_dict(),
            # The search this checkpoint won, carried to the backtest, which counts every trial of it.
            "trial_sharpes": ctx.input_results["tune"][algo].get("trial_sharpes"),
            # What the walk-forward refits each fold with: the same configuration, on less history.
            "config": agent.to_dict(),
            "env": env,
        }
    return trained


def _refit_budget(config: PipelineConfig, dataset: str) -> RefitBudget:
    """The refit's budget next to the tuned one, from the bars of train and of train + validation."""
    from ml.data.features import FeatureConfig
    from ml.envs.factory import prepared
    from ml.pipeline.budget import refit_budget
    from ml.tune.runner import SMOKE_SETTINGS

    split = prepared(dataset, FeatureConfig(), config.split).split
    tuned = SMOKE_SETTINGS if config.smoke else {}
    return refit_budget(
        tuned.get("iterations", config.iterations),
        tuned.get("steps_per_iteration", config.steps_per_iteration),
        len(split.train),
        len(split.part("train+validation")),
        config.retrain_timesteps,
    )


def _smoke(budget: RefitBudget, timesteps: int) -> RefitBudget:
    return replace(budget, timesteps=timesteps, source="smoke")


def run_backtest(ctx: StageContext) -> dict[str, Any]:
    """The trained agents and the baselines on the untouched test split, ranked in one leaderboard."""
    from ml.backtest.batch import Grid, run_batch
    from ml.backtest.trial_count import search_from_tune, with_retunes

    config = ctx.config
    checkpoints = {algo: item["checkpoint"] for algo, item in ctx.input_results["train"].items()}
    policies = [*checkpoints.values(), *(f"baseline:{b}" for b in config.baselines)]
    grid = Grid(
        policies=policies,
        datasets=[ctx.input_results["data"]["store"]],
        periods=["test"],
        env=[dict(config.env)],
        metric="sharpe",
        workers=2,
        seed=config.seed,
        split=config.split.to_dict(),
    )
    search = search_from_tune(ctx.input_results["train"], "tune stage")
    walked = None
    if config.walk_forward.folds:
        from ml.pipeline.walk_forward import run_walk_forward

        # Before the batch, so that a per-fold re-tune's trials are in the N that batch.json, stage.json, the
        # report and the console all state.
        walked = run_walk_forward(ctx, checkpoints)
        search = with_retunes(search, walked["retunes"])
    ctx.say(f"backtesting {len(policies)} policies on the test split")
    batch = run_batch(grid, ctx.output, search=search)
    names = {path: algo for algo, path in checkpoints.items()}
    rows = []
    for row in batch.leaderboard.to_dict("records"):
        rows.append(
            {
                "rank": int(row["rank"]),
                "policy": names.get(str(row["policy"]), str(row["policy"]).removeprefix("baseline:")),
                "status": row["status"],
                "sharpe": row.get("sharpe"),
                "total_return": row.get("total_return"),
                "max_drawdown": row.get("max_drawdown"),
                "error": row["error"],
            }
        )
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        raise RlopsError(f"stage backtest: {len(failed)} cell(s) failed: {failed[0]['policy']}: {failed[0]['error']}")
    result: dict[str, Any] = {
        "leaderboard": rows,
        "deflated_sharpe": batch.deflated_sharpe,
        "trials": batch.trials,
        "n_trials": batch.trials,  # tuning trials + cells: what the research report says N counts
        "deflation": batch.deflation,  # which N and Sharpe variance the deflated Sharpe used, and from where
        "overfitting": batch.overfitting,
    }
    if walked is not None:
        result["walk_forward"] = walked
    return result


def run_report(ctx: StageContext) -> dict[str, Any]:
    """The research report (ml/pipeline/report.py), written next to a copy of the test-split batch whose cells get
    their own reports: data and split, tuning on validation, test equity, leaderboard, deflated Sharpe."""
    from ml.pipeline.report import write_research_report

    storage.copy_tree(ctx.inputs["backtest"], ctx.output)  # its stage.json is replaced by this stage's own
    path = write_research_report(ctx.output, ctx.config, ctx.input_results)
    return {"report": path}


def run_record(ctx: StageContext) -> dict[str, Any]:
    """A dated progress entry with the run's headline numbers, written next to the outputs; appended to a memory
    bank only when the config names one (`--bank`), so that running the pipeline never edits a checkout by itself."""
    from ml.backtest.overfitting import describe
    from ml.backtest.trial_count import deflation_line
    from rlops_core import memory

    tested = ctx.input_results["backtest"]
    board = tested["leaderboard"]
    tuned = ctx.input_results["tune"]
    lines = [
        f"Pipeline on {ctx.config.dataset} ({labelled(ctx.input_results['data']['fingerprint'])}).",
        "Tuned on the validation split ("
        + ", ".join(
            f"{a}: {t['trials']} trials, best {ctx.config.metric} {t['best_score']:.3f}" for a, t in tuned.items()
        )
        + "); refit on train + validation; scored once on the test split:",
        "",
        *(
            f"{r['rank']}. {r['policy']}: Sharpe {r['sharpe']:.3f}, total return {r['total_return']:+.2%}, "
            f"max drawdown {r['max_drawdown']:.2%}"
            for r in board
        ),
        "",
        f"Best on test: {deflation_line(tested.get('deflation'), tested['deflated_sharpe'])}.",
        "Overfitting: "
        + "; ".join(f"tuning {a}: {describe(t.get('overfitting'))}" for a, t in tuned.items())
        + f"; test cells: {describe(tested.get('overfitting'))}.",
        f"Report: {ctx.input_results['report']['report']}",
    ]
    title = (
        f"Pipeline run on {ctx.config.dataset}: best on test is {board[0]['policy']} (Sharpe {board[0]['sharpe']:.2f})"
    )
    entry = memory.new_entry(memory.EntryKind.PROGRESS, title, "\n".join(lines))
    entry_file = storage.join(ctx.output, memory.ENTRY_FILE)
    storage.write_bytes(entry_file, entry.to_file_text().encode())
    result = {"entry": entry_file, "title": entry.title, "timestamp": entry.timestamp.isoformat()}
    if ctx.config.memory_bank is not None:
        bank = check_bank(ctx.config.memory_bank)
        added = memory.add_entry(bank, entry.kind, entry.title, entry.body)
        result.update(bank=str(bank), timestamp=added.timestamp.isoformat())
    return result


def check_bank(location: str) -> Path:
    """The memory bank at `location`, refused before any work when the record stage could not append to it."""
    import os

    from rlops_core import memory

    bank = Path(location)
    if not bank.is_dir():
        raise RlopsError(f"memory bank {bank}: no such folder (from --bank or memory_bank); create it or leave it out")
    problems = memory.validate(bank)
    if problems:
        raise RlopsError(f"memory bank {bank}: {problems[0]}; fix it (rlops memory validate --bank {bank}) first")
    if not os.access(bank, os.W_OK):
        raise RlopsError(f"memory bank {bank}: not writable by this user")
    return bank


# The split is every training and scoring stage's setting: new dates or a new embargo rerun them all.
ENV_SETTINGS = ("env", "split", "seed", "smoke")
STAGES: tuple[Stage, ...] = (
    Stage("data", (), "validated bars as a Parquet store (store/) with its manifest", ("dataset",), run_data),
    Stage(
        "tune",
        ("data",),
        "one Ray Tune experiment per algorithm, with leaderboard and best_config.yaml",
        ("algos", "search", "scheduler", "samples", "iterations", "steps_per_iteration", "metric", *ENV_SETTINGS),
        run_tune,
    ),
    Stage(
        "train",
        ("data", "tune"),
        "one run folder per algorithm with its final checkpoint",
        ("algos", "retrain_timesteps", *ENV_SETTINGS),
        run_train,
    ),
    Stage(
        "backtest",
        ("data", "train"),
        "the test-split leaderboard (Parquet, CSV, Markdown) and each cell's result",
        ("baselines", "walk_forward", *ENV_SETTINGS),
        run_backtest,
    ),
    Stage(
        "report",
        ("data", "tune", "train", "backtest"),
        "report.html: the research report (data, split, tuning, test equity, leaderboard), and each cell's report",
        (),
        run_report,
    ),
    Stage(
        "record",
        ("data", "tune", "backtest", "report"),
        "memory-entry.md: the dated progress entry (also appended to the memory bank memory_bank names, if any)",
        ("memory_bank",),
        run_record,
    ),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)


def stage_named(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise RlopsError(f"unknown stage '{name}'; stages, in order: {', '.join(STAGE_NAMES)}")
