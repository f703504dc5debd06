"""The training entry point: resolve config and environment, run one algorithm, write ``runs/<name>/``.

A run directory holds ``config.yaml`` (the algorithm, its whole config, the environment and the dataset
fingerprint), ``metrics.csv`` and TensorBoard events, ``checkpoints/`` and ``summary.json``; the CLI prints
:func:`summary_line` at the end.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ml.agents.checkpoint import Checkpoint, load_checkpoint
from ml.agents.config import A3CConfig, AgentConfig, PPOConfig, config_class, from_mapping
from ml.agents.env_sources import EnvSource, contract_of, gym_source, source_from_description, trading_source
from ml.agents.result import TrainResult
from rlops_core.errors import RlopsError

# Small budgets that exercise every code path (rollout, update, checkpoint, evaluation) in seconds.
SMOKE_OVERRIDES: dict[str, dict[str, Any]] = {
    "ppo": {
        "total_timesteps": 1024,
        "num_envs": 4,
        "rollout_steps": 64,
        "batch_size": 64,
        "num_epochs": 2,
        "eval_episodes": 1,
    },
    "a3c": {"total_timesteps": 1000, "num_workers": 2, "eval_interval": 0, "target_return": None, "eval_episodes": 1},
}
_CONFIG_SECTIONS = {"algo", "config", "env", "environment", "dataset_fingerprint", "resumed_from"}


@dataclass(frozen=True)
class ConfigFile:
    """A user's ``--config`` YAML: agent hyperparameters and, for the trading env, EnvConfig settings.

    Either flat (hyperparameters at the top level) or sectioned like a run's saved ``config.yaml``.
    """

    algo: str | None = None
    agent: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)


def read_config_file(path: Path) -> ConfigFile:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise RlopsError(f"config file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise RlopsError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return ConfigFile()
    if not isinstance(data, dict):
        raise RlopsError(f"config file {path} must hold a mapping of settings")
    if not set(data) & _CONFIG_SECTIONS:
        return ConfigFile(agent=data)
    env = data.get("env") or {}
    environment = data.get("environment") or {}
    if not env and environment.get("kind") == "trading":
        env = environment.get("env", {})
    return ConfigFile(algo=data.get("algo"), agent=dict(data.get("config") or {}), env=dict(env))


@dataclass(frozen=True)
class TrainRequest:
    """Everything ``rlops train`` decides before training starts."""

    algo: str
    config: AgentConfig
    source: EnvSource
    run_dir: Path
    resume: Checkpoint | None = None
    resume_path: Path | None = None
    show_progress: bool = True


def build_request(
    algo: str,
    dataset: str | None = "sp500",
    env: str | None = None,
    config_path: Path | None = None,
    resume: Path | None = None,
    smoke: bool = False,
    runs_dir: Path = Path("runs"),
    name: str | None = None,
    overrides: dict[str, Any] | None = None,
    show_progress: bool = True,
    split: dict[str, Any] | None = None,
) -> TrainRequest:
    """Validate every input (algorithm, config, environment, checkpoint) before any training work. `split` (a
    `SplitConfig` mapping) cuts the dataset; training uses its train part."""
    cls = config_class(algo)
    file = read_config_file(config_path) if config_path is not None else ConfigFile()
    if file.algo is not None and file.algo != algo:
        raise RlopsError(f"config file {config_path} is for algorithm {file.algo!r}, not {algo!r}")
    checkpoint = load_checkpoint(resume) if resume is not None else None
    values: dict[str, Any] = {}
    if checkpoint is not None:
        if checkpoint.algo != algo:
            raise RlopsError(f"checkpoint {resume} was written by {checkpoint.algo}, not {algo}")
        values.update(checkpoint.config)
    values.update(file.agent)
    if smoke:
        values.update(SMOKE_OVERRIDES[algo])
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    config: AgentConfig = from_mapping(PPOConfig, values) if cls is PPOConfig else from_mapping(A3CConfig, values)

    source: EnvSource
    if checkpoint is not None:
        if split is not None:
            raise RlopsError(f"--resume {resume} keeps the split its checkpoint recorded; leave out the split flags")
        source = source_from_description(checkpoint.env_source)
        if source.fingerprint != checkpoint.dataset_fingerprint:
            raise RlopsError(
                f"dataset changed since checkpoint {resume}: fingerprint {source.fingerprint} "
                f"!= recorded {checkpoint.dataset_fingerprint}"
            )
    elif env is not None:
        if split is not None:
            raise RlopsError("split flags (--validation-start, --test-start, ...) apply to the trading env only")
        if file.env:
            raise RlopsError("environment settings (env:) in the config file apply to the trading env only")
        source = gym_source(env)
    elif dataset is not None:
        source = trading_source(dataset, "train", file.env, split=split)
    else:
        raise RlopsError("name a --dataset (trading env) or an --env (gymnasium control task)")
    run_name = name or default_run_name(algo, source)
    return TrainRequest(algo, config, source, runs_dir / run_name, checkpoint, resume, show_progress)


def default_run_name(algo: str, source: EnvSource) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    label = re.sub(r"[^A-Za-z0-9_.-]+", "-", source.name).strip("-")
    return f"{algo}-{label}-{stamp}"


def run_training(request: TrainRequest) -> TrainResult:
    """Write the config, train, write the summary; the run directory must not hold another run."""
    run_dir = request.run_dir
    if (run_dir / "config.yaml").exists():
        raise RlopsError(f"run directory {run_dir} already holds a run; choose another --name")
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = {
        "algo": request.algo,
        "config": request.config.to_dict(),
        "environment": request.source.describe(),
        "dataset_fingerprint": request.source.fingerprint,
        "resumed_from": str(request.resume_path) if request.resume_path else None,
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))

    if isinstance(request.config, PPOConfig):
        from ml.agents.ppo import train_ppo

        result = train_ppo(request.config, request.source, run_dir, request.resume, request.show_progress)
    else:
        assert isinstance(request.config, A3CConfig)
        from ml.agents.a3c import train_a3c

        result = train_a3c(request.config, request.source, run_dir, request.resume, request.show_progress)
    result.evaluation_period = evaluation_period(request.source)
    (run_dir / "summary.json").write_text(json.dumps(summary_dict(result), indent=2) + "\n")
    return result


def summary_dict(result: TrainResult) -> dict[str, Any]:
    data = dataclasses.asdict(result)
    data["checkpoint"] = str(result.checkpoint) if result.checkpoint else None
    data["steps_per_s"] = result.steps_per_s
    data["evaluation"] = result.evaluation._asdict() if result.evaluation else None
    data["worker_updates"] = {str(k): v for k, v in result.worker_updates.items()}
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in data.items()}


def evaluation_period(source: EnvSource) -> str:
    """Where the closing evaluation runs: the source's own env, which for the trading env is the period trained on."""
    contract = contract_of(source)
    if contract is None:
        return source.name
    first, last = contract["training_period"]
    return f"{contract['dataset']} {first[:10]} .. {last[:10]}, the training period (in-sample)"


def summary_line(result: TrainResult, run_dir: Path) -> str:
    where = f" on {result.evaluation_period}" if result.evaluation_period else ""
    evaluation = (
        f", eval {result.evaluation.mean_return:.4g} ± {result.evaluation.std_return:.3g} "
        f"over {len(result.evaluation.returns)} episodes{where}"
        if result.evaluation and result.evaluation.returns
        else ""
    )
    return (
        f"{result.algo} run {run_dir}: {result.global_step:,} steps in {result.wall_time_s:.1f} s "
        f"({result.steps_per_s:,.0f} steps/s), {result.episodes} episodes, "
        f"mean return {result.mean_return:.4g}{evaluation}; checkpoint {result.checkpoint}"
    )
