"""Run, resume and summarise a tuning experiment.

Order matters for "no half-created experiment": settings, search space, base config, storage target, Ray
connection and data are all checked before the experiment folder is written; only then is
``tune_settings.yaml`` saved (what ``--resume`` reads back) and the Tuner started.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import yaml

from ml.agents.train import SMOKE_OVERRIDES
from ml.tune.objective import Payload, build_payload
from ml.tune.settings import SETTINGS_FILE, TuneSettings
from ml.tune.spaces import SearchSpace, agent_config, build_space
from ml.tune.trainable import TrialPlan, metric_key, train_fn
from ml.tune.trials import (
    OVERFITTING_FILE,
    RETURNS_FILE,
    SHARPE,
    best_report,
    report_sharpe,
    returns_matrix,
    tuning_overfitting,
)
from rlops_core.errors import RlopsError

if TYPE_CHECKING:
    import pyarrow.fs
    from ray.tune import ResultGrid

Trainable = Callable[..., None]
_PROBE_TIMEOUT_S = 5.0
# Smoke runs: the agents' own smoke budgets, two short reports per trial.
SMOKE_SETTINGS: dict[str, Any] = {"iterations": 2, "steps_per_iteration": 256}


@dataclass(frozen=True)
class Storage:
    """Where experiments live: a pyarrow filesystem and a path on it (no scheme)."""

    filesystem: pyarrow.fs.FileSystem
    root: str
    uri: str

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def exists(self, path: str) -> bool:
        import pyarrow.fs

        return bool(self.filesystem.get_file_info(path).type != pyarrow.fs.FileType.NotFound)

    def write_text(self, path: str, text: str) -> None:
        parent = path.rsplit("/", 1)[0]
        self.filesystem.create_dir(parent, recursive=True)
        with self.filesystem.open_output_stream(path) as stream:
            stream.write(text.encode())

    def read_text(self, path: str) -> str:
        with self.filesystem.open_input_stream(path) as stream:
            return bytes(stream.read()).decode()


def open_storage(uri: str) -> Storage:
    import pyarrow.fs

    if uri.startswith("s3://"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        fs = pyarrow.fs.S3FileSystem(
            endpoint_override=endpoint,
            region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            # moto and other local endpoints speak plain HTTP
            scheme=urlparse(endpoint).scheme if endpoint else "https",
        )
        return Storage(fs, uri[len("s3://") :].rstrip("/"), uri.rstrip("/"))
    if "://" in uri:
        raise RlopsError(f"storage {uri!r}: use a local directory or an s3:// prefix")
    root = os.path.abspath(uri)
    return Storage(pyarrow.fs.LocalFileSystem(), root, root)


def split_experiment(path: str) -> tuple[str, str]:
    """``<storage>/<name>`` of an experiment path (local or s3://)."""
    trimmed = path.rstrip("/")
    if "/" not in trimmed:
        trimmed = os.path.abspath(trimmed)
    storage, name = trimmed.rsplit("/", 1)
    return storage, name


def probe_address(address: str) -> None:
    """Fail fast on an address nothing listens on (Ray itself would retry for a long time)."""
    if address == "auto":
        return
    target = address[len("ray://") :] if address.startswith("ray://") else address
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise RlopsError(f"--address {address!r}: use auto, host:port or ray://host:port")
    try:
        with socket.create_connection((host, int(port)), timeout=_PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        raise RlopsError(f"cannot reach a Ray cluster at {address}: {exc}") from exc


@contextmanager
def ray_session(settings: TuneSettings, say: Callable[[str], None]) -> Iterator[None]:
    """Join the session already open in this process, the cluster at ``address``, or start a local one."""
    import ray

    from ml.tune.local_ray import init_local

    if ray.is_initialized():
        yield
        return
    if settings.address is not None:
        probe_address(settings.address)
        try:
            ray.init(address=settings.address, log_to_driver=False)
        except (ConnectionError, RuntimeError) as exc:
            raise RlopsError(f"cannot connect to the Ray cluster at {settings.address}: {exc}") from exc
    else:
        context = init_local(settings.num_cpus, include_dashboard=True)
        if context.dashboard_url:
            say(f"Ray dashboard: http://{context.dashboard_url}")
    try:
        yield
    finally:
        ray.shutdown()


def finalize_settings(settings: TuneSettings) -> TuneSettings:
    updates: dict[str, Any] = {}
    if not settings.name:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        updates["name"] = f"{settings.algo}-{settings.search}-{stamp}"
    if settings.smoke:
        updates.update({k: v for k, v in SMOKE_SETTINGS.items() if getattr(settings, k) == _default(k)})
    return replace(settings, **updates)


def _default(name: str) -> Any:
    return TuneSettings.__dataclass_fields__[name].default


def base_config(settings: TuneSettings) -> dict[str, Any]:
    """Fixed agent values: the tuning budget, no in-run evaluation (the backtest scores), the user's base."""
    base: dict[str, Any] = dict(SMOKE_OVERRIDES[settings.algo]) if settings.smoke else {}
    base.update(
        {
            "total_timesteps": settings.iterations * settings.steps_per_iteration,
            "eval_episodes": 0,
            "checkpoint_interval": 0,
            "seed": settings.seed,
            "device": "cuda" if settings.gpus_per_trial > 0 else "cpu",
        }
    )
    if settings.algo == "a3c":
        base.update({"num_workers": max(1, round(settings.cpus_per_trial)), "eval_interval": 0, "target_return": None})
    base.update(settings.base)
    agent_config(settings.algo, base, {})
    return base


def searcher(settings: TuneSettings, space: SearchSpace) -> Any:
    mode, key = settings.resolved_mode, metric_key(settings.metric)
    if settings.search == "bayes":
        from optuna.samplers import TPESampler
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(metric=key, mode=mode, sampler=TPESampler(seed=settings.seed))
    if settings.search == "bayesopt":
        from ray.tune.search.bayesopt import BayesOptSearch

        return BayesOptSearch(metric=key, mode=mode, random_state=settings.seed, random_search_steps=2)
    from ray.tune.search.basic_variant import BasicVariantGenerator

    # Seeded, so that two experiments with the same --seed try the same configurations. Tune's own
    # max_concurrent_trials applies to model-based searchers only; this generator limits itself.
    return BasicVariantGenerator(random_state=settings.seed, max_concurrent=settings.max_concurrent)


def scheduler(settings: TuneSettings, space: SearchSpace) -> Any:
    from ray.tune.schedulers import ASHAScheduler, PopulationBasedTraining

    if settings.scheduler == "asha":
        return ASHAScheduler(
            time_attr="training_iteration",
            max_t=settings.iterations,
            grace_period=min(settings.grace_period, settings.iterations),
            reduction_factor=settings.reduction_factor,
        )
    if settings.scheduler == "pbt":
        return PopulationBasedTraining(
            time_attr="training_iteration",
            perturbation_interval=settings.checkpoint_every,
            hyperparam_mutations=space.mutations(),
            custom_explore_fn=space.clip,
        )
    return None


@dataclass
class Prepared:
    settings: TuneSettings
    space: SearchSpace
    plan: TrialPlan
    storage: Storage


def prepare(settings: TuneSettings) -> Prepared:
    """Every check that needs neither Ray nor the data; writes nothing."""
    settings = finalize_settings(settings)
    space = build_space(settings.algo, settings.space, settings.base, settings.search)
    plan = TrialPlan(
        settings.algo,
        base_config(settings),
        settings.iterations,
        settings.steps_per_iteration,
        settings.checkpoint_every,
    )
    return Prepared(settings, space, plan, open_storage(settings.storage))


def _trainable(prepared: Prepared, payload: Payload, trainable: Trainable) -> Any:
    from ray import tune

    settings = prepared.settings
    resources = {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial}
    return tune.with_resources(tune.with_parameters(trainable, payload=payload, plan=prepared.plan), resources)


def _run_config(prepared: Prepared) -> Any:
    from ray import tune

    # Keeping the best checkpoints (num_to_keep) makes Tune snapshot its small experiment state after each
    # checkpoint; by design here, so its "snapshotting is frequent" notice would only flood the log.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")

    settings = prepared.settings
    return tune.RunConfig(
        name=settings.name,
        storage_path=prepared.storage.root,
        storage_filesystem=prepared.storage.filesystem,
        failure_config=tune.FailureConfig(max_failures=settings.max_failures),
        checkpoint_config=tune.CheckpointConfig(
            # PBT exploits other trials' checkpoints, which must not be pruned under it.
            num_to_keep=None if settings.scheduler == "pbt" else 2,
            checkpoint_score_attribute=metric_key(settings.metric),
            checkpoint_score_order=settings.resolved_mode,
        ),
        verbose=0,
    )


def _tune_config(prepared: Prepared) -> Any:
    from ray import tune

    settings = prepared.settings
    return tune.TuneConfig(
        metric=metric_key(settings.metric),
        mode=settings.resolved_mode,
        search_alg=searcher(settings, prepared.space),
        scheduler=scheduler(settings, prepared.space),
        num_samples=settings.samples,
        max_concurrent_trials=(settings.max_concurrent or None) if settings.search in ("bayes", "bayesopt") else None,
        # A new trial runs in a finished trial's actor (same resources): no process start, no second import
        # of torch and the agents, no second copy of the data; PBT also swaps configurations this way.
        reuse_actors=True,
        trial_dirname_creator=_trial_dirname,
    )


def _trial_dirname(trial: Any) -> str:
    # Ray's default embeds every sampled value in the folder name, which overflows path limits.
    return f"trial_{trial.trial_id}"


def run_tune(
    settings: TuneSettings, trainable: Trainable = train_fn, say: Callable[[str], None] = print
) -> TuneOutcome:
    """A new experiment under ``settings.storage``; errors before anything is written on bad input."""
    from ray import tune

    prepared = prepare(settings)
    settings, storage = prepared.settings, prepared.storage
    experiment = storage.path(settings.name)
    if storage.exists(experiment):
        raise RlopsError(f"experiment {settings.experiment_path} already exists; continue it with --resume")
    with ray_session(settings, say):
        payload = build_payload(
            settings.dataset, settings.env, settings.folds, settings.metric, settings.resolved_mode, settings.split
        )
        storage.write_text(f"{experiment}/{SETTINGS_FILE}", settings.to_yaml())
        say(
            f"experiment {settings.experiment_path}: {settings.samples} sample(s), search {settings.search}, "
            f"scheduler {settings.scheduler}, {settings.iterations} report(s) per trial"
        )
        tuner = tune.Tuner(
            _trainable(prepared, payload, trainable),
            param_space=prepared.space.to_tune(settings.search),
            tune_config=_tune_config(prepared),
            run_config=_run_config(prepared),
        )
        results = tuner.fit()
        return write_outputs(prepared, results)


def resume_tune(
    experiment_path: str, trainable: Trainable = train_fn, say: Callable[[str], None] = print, **overrides: Any
) -> TuneOutcome:
    """Continue an experiment whose driver stopped: finished trials stay, unfinished ones resume."""
    from ray import tune

    storage_uri, name = split_experiment(experiment_path)
    storage = open_storage(storage_uri)
    settings_path = storage.path(name, SETTINGS_FILE)
    if not storage.exists(settings_path):
        raise RlopsError(f"{experiment_path} is not an rlops tune experiment (no {SETTINGS_FILE})")
    data = yaml.safe_load(storage.read_text(settings_path))
    data.update({"storage": storage_uri, "name": name, **{k: v for k, v in overrides.items() if v is not None}})
    prepared = prepare(TuneSettings.from_dict(data))
    settings = prepared.settings
    if not tune.Tuner.can_restore(storage.path(name), storage_filesystem=storage.filesystem):
        raise RlopsError(f"experiment {experiment_path} holds no Tune state to resume from")
    with ray_session(settings, say):
        payload = build_payload(
            settings.dataset, settings.env, settings.folds, settings.metric, settings.resolved_mode, settings.split
        )
        say(f"resuming experiment {settings.experiment_path}")
        tuner = tune.Tuner.restore(
            storage.path(name),
            trainable=_trainable(prepared, payload, trainable),
            resume_unfinished=True,
            resume_errored=False,
            storage_filesystem=storage.filesystem,
        )
        results = tuner.fit()
        return write_outputs(prepared, results)


@dataclass(frozen=True)
class TuneOutcome:
    experiment: str
    leaderboard: Any  # pandas.DataFrame
    best_config: dict[str, Any] | None
    best_checkpoint: str | None
    overfitting: dict[str, Any] = field(default_factory=dict)  # the trials' PBO, or why there is none


def _results(grid: ResultGrid) -> list[Any]:
    return [grid[i] for i in range(len(grid))]


def leaderboard(results: ResultGrid, key: str, mode: str) -> Any:
    import pandas as pd

    rows = []
    for result in _results(results):
        history = result.metrics_dataframe
        scores = history[key] if history is not None and key in history else pd.Series(dtype=float)
        metrics = result.metrics or {}
        best = (scores.max() if mode == "max" else scores.min()) if len(scores) else float("nan")
        rows.append(
            {
                "trial_id": metrics.get("trial_id", os.path.basename(result.path)),
                "status": "ERROR" if result.error is not None else "TERMINATED",
                "iterations": int(metrics.get("training_iteration", 0) or 0),
                f"best_{key}": float(best),
                f"last_{key}": float(metrics.get(key, float("nan")) or float("nan")),
                # The validation Sharpe of the report the trial ranks by: what the trial count's variance uses.
                SHARPE: report_sharpe(best_report(history, key, mode)),
                "node_id": metrics.get("node_id"),
                **{f"config/{k}": v for k, v in (result.config or {}).items()},
                "error": type(result.error).__name__ + f": {result.error}" if result.error is not None else "",
                "path": result.path,
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values(f"best_{key}", ascending=mode == "min", na_position="last").reset_index(drop=True)


def write_outputs(prepared: Prepared, results: ResultGrid) -> TuneOutcome:
    """Leaderboard (CSV, Parquet), the best config (YAML for ``rlops train --config``) and best checkpoint."""
    import io

    import pyarrow.fs

    settings, storage = prepared.settings, prepared.storage
    key, mode = metric_key(settings.metric), settings.resolved_mode
    experiment = storage.path(settings.name)
    board = leaderboard(results, key, mode)
    storage.write_text(f"{experiment}/leaderboard.csv", board.to_csv(index=False))
    if not board.empty:
        buffer = io.BytesIO()
        board.astype({"node_id": "string", "error": "string"}).to_parquet(buffer, index=False)
        with storage.filesystem.open_output_stream(f"{experiment}/leaderboard.parquet") as stream:
            stream.write(buffer.getvalue())
    overfitting = _write_trial_returns(storage, experiment, results, board, key, mode)
    ok = [r for r in _results(results) if r.error is None and r.metrics and key in r.metrics]
    if not ok:
        return TuneOutcome(settings.experiment_path, board, None, None, overfitting)
    best = results.get_best_result(key, mode, scope="all", filter_nan_and_inf=True)
    sampled = {k: v for k, v in (best.config or {}).items()}
    best_config = {
        "algo": settings.algo,
        "config": agent_config(settings.algo, prepared.plan.base, sampled).to_dict(),
        "env": dict(settings.env),
        "tuned": {"experiment": settings.experiment_path, "metric": key, "mode": mode},
    }
    storage.write_text(f"{experiment}/best_config.yaml", yaml.safe_dump(best_config, sort_keys=False))
    checkpoint = best.get_best_checkpoint(key, mode) if best.best_checkpoints else best.checkpoint
    best_path: str | None = None
    if checkpoint is not None:
        target = f"{experiment}/best"
        storage.filesystem.create_dir(target, recursive=True)
        pyarrow.fs.copy_files(
            checkpoint.path,
            target,
            source_filesystem=checkpoint.filesystem,
            destination_filesystem=storage.filesystem,
        )
        best_path = f"{settings.experiment_path}/best"
    return TuneOutcome(settings.experiment_path, board, best_config, best_path, overfitting)


def _write_trial_returns(
    storage: Storage, experiment: str, results: ResultGrid, board: Any, key: str, mode: str
) -> dict[str, Any]:
    """Every trial's best-report validation returns (columns in leaderboard order) and their PBO."""
    import io
    import json

    rows = {
        str((r.metrics or {}).get("trial_id", os.path.basename(r.path))): best_report(r.metrics_dataframe, key, mode)
        for r in _results(results)
    }
    order = [str(t) for t in board["trial_id"]] if not board.empty else []
    matrix = returns_matrix([(trial, rows.get(trial)) for trial in order])
    if not matrix.empty:
        buffer = io.BytesIO()
        matrix.to_parquet(buffer, index=False)
        with storage.filesystem.open_output_stream(f"{experiment}/{RETURNS_FILE}") as stream:
            stream.write(buffer.getvalue())
    overfitting = tuning_overfitting(matrix)
    storage.write_text(f"{experiment}/{OVERFITTING_FILE}", json.dumps(overfitting, indent=2))
    return overfitting
