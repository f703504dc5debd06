"""The one checkpoint format of both agents: a versioned dictionary written with ``torch.save``.

Everything in it is a tensor or a plain Python value, so :func:`load_checkpoint` reads it with
``torch.load(weights_only=True)`` and never executes pickled code. The one exception is the optional
``env_state`` (pickled environments, for exact PPO resume), which is stored as opaque bytes and only
unpickled by :func:`ml.agents.ppo` on an explicit resume of one's own run.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ml.agents.spaces import SpaceSpec
from rlops_core.errors import RlopsError

FORMAT = "rlops-agent-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """A snapshot of a training run, enough to resume it or to serve its policy."""

    algo: str
    config: dict[str, Any]
    env_spec: SpaceSpec
    model_state: dict[str, Tensor]
    optimizer_state: dict[str, Any] | None = None
    obs_norm: dict[str, Tensor] | None = None
    env_source: dict[str, Any] = field(default_factory=dict)
    """How the run built its environment (kind, id or dataset, env parameters)."""
    dataset_fingerprint: str | None = None
    global_step: int = 0
    iteration: int = 0
    rng_state: Tensor | None = None
    trainer_state: dict[str, Any] = field(default_factory=dict)
    """Algorithm-specific resume data (recent episode returns, counters)."""
    env_state: bytes | None = None
    created_at: str = ""
    observation_contract: dict[str, Any] | None = None
    """How to build observations from raw bars (``ml.envs.contract``); None for gym tasks and for checkpoints
    written before rlops recorded it."""


def save_checkpoint(checkpoint: Checkpoint, path: Path) -> Path:
    """Write atomically (temporary file, then rename) so a crash never leaves a half-written checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "algo": checkpoint.algo,
        "config": checkpoint.config,
        "env_spec": checkpoint.env_spec.to_dict(),
        "model_state": checkpoint.model_state,
        "optimizer_state": checkpoint.optimizer_state,
        "obs_norm": checkpoint.obs_norm,
        "env_source": checkpoint.env_source,
        "dataset_fingerprint": checkpoint.dataset_fingerprint,
        "global_step": checkpoint.global_step,
        "iteration": checkpoint.iteration,
        "rng_state": checkpoint.rng_state,
        "trainer_state": checkpoint.trainer_state,
        "env_state": checkpoint.env_state,
        "created_at": checkpoint.created_at or datetime.now(UTC).isoformat(timespec="seconds"),
        "observation_contract": checkpoint.observation_contract,
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and check a checkpoint; every failure is an :class:`RlopsError` naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise RlopsError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for damaged files
        raise RlopsError(f"checkpoint {path} is corrupt or not an rlops checkpoint ({type(exc).__name__})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise RlopsError(f"checkpoint {path} is not an rlops agent checkpoint")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise RlopsError(f"checkpoint {path} has format version {version}; this rlops reads version {FORMAT_VERSION}")
    try:
        return Checkpoint(
            algo=str(payload["algo"]),
            config=dict(payload["config"]),
            env_spec=SpaceSpec.from_dict(payload["env_spec"]),
            model_state=dict(payload["model_state"]),
            optimizer_state=payload["optimizer_state"],
            obs_norm=payload["obs_norm"],
            env_source=dict(payload["env_source"]),
            dataset_fingerprint=payload["dataset_fingerprint"],
            global_step=int(payload["global_step"]),
            iteration=int(payload["iteration"]),
            rng_state=payload["rng_state"],
            trainer_state=dict(payload["trainer_state"]),
            env_state=payload["env_state"],
            created_at=str(payload["created_at"]),
            # Optional: checkpoints written before the contract existed still load (and say they lack it).
            observation_contract=payload.get("observation_contract"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RlopsError(f"checkpoint {path} is incomplete: missing or bad field {exc}") from exc
