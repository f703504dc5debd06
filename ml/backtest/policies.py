"""Everything `backtest` accepts as a policy, resolved to one shape: a batch function plus what it needs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ml.backtest.baselines import BASELINE_PARAMS, BASELINES, PolicyFn, baseline, check_params
from ml.backtest.provenance import Provenance, provenance_of
from ml.data import storage
from ml.envs.simulator import Simulator
from rlops_core.errors import RlopsError

if TYPE_CHECKING:
    from ml.agents.policy import Policy

BASELINE_PREFIX = "baseline:"


@dataclass(frozen=True)
class ResolvedPolicy:
    """`build(sim)` returns the function that acts for that simulator's envs."""

    name: str
    kind: str  # baseline | checkpoint | policy | callable
    build: Callable[[Simulator], PolicyFn]
    obs_dim: int | None = None
    env_settings: dict[str, Any] = field(default_factory=dict)  # the policy's own environment interface
    feature_settings: dict[str, Any] = field(default_factory=dict)
    # The split a checkpoint was trained under (a `SplitConfig` mapping); None for policies that were not trained.
    split_settings: dict[str, Any] | None = None
    checkpoint_sha256: str | None = None
    loaded: Policy | None = None  # a checkpoint's loaded `Policy`, which the stacked sweep evaluates with the others
    provenance: Provenance | None = None  # a checkpoint's training data and period; None for untrained policies


def checkpoint_label(location: str) -> str:
    """`<run>:<checkpoint>` for a run's `<run>/checkpoints/<name>.pt`, else the file's name without suffix."""
    parts = location.rstrip("/").split("/")
    stem = parts[-1].removesuffix(".pt")
    if len(parts) >= 3 and parts[-2] == "checkpoints":
        return f"{parts[-3]}:{stem}"
    return stem


def _sha256(location: str) -> str:
    return "sha256:" + hashlib.sha256(storage.read_bytes(location)).hexdigest()


def _from_checkpoint(location: str) -> ResolvedPolicy:
    from ml.agents.checkpoint import load_checkpoint
    from ml.agents.policy import policy_from_checkpoint
    from ml.data.splits import LEGACY_SPLIT

    path = location
    if storage.is_s3(location):
        import tempfile

        local = Path(tempfile.mkdtemp(prefix="rlops-ckpt-")) / "checkpoint.pt"
        local.write_bytes(storage.read_bytes(location))
        path = str(local)
    checkpoint = load_checkpoint(path)
    source = checkpoint.env_source
    if source.get("kind") != "trading":
        raise RlopsError(
            f"checkpoint {location} was trained on '{source.get('env_id', source.get('kind'))}', not the trading "
            "environment; it cannot trade market data"
        )
    policy = policy_from_checkpoint(checkpoint)
    return ResolvedPolicy(
        name=checkpoint_label(location),
        kind="checkpoint",
        build=lambda sim: policy.act,
        obs_dim=policy.spec.obs_dim,
        env_settings=dict(source.get("env", {})),
        feature_settings=dict(source.get("features", {})),
        split_settings=dict(source.get("split") or LEGACY_SPLIT.to_dict()),
        checkpoint_sha256=_sha256(path),
        loaded=policy,
        provenance=provenance_of(checkpoint),
    )


def resolve_policy(policy: Any, params: dict[str, Any] | None = None, seed: int = 0) -> ResolvedPolicy:
    """A checkpoint path (local or s3://), `baseline:NAME`, a loaded `Policy`, or any callable obs -> actions."""
    params = dict(params or {})
    if isinstance(policy, str | Path) and str(policy).startswith(BASELINE_PREFIX):
        name = str(policy)[len(BASELINE_PREFIX) :]
        if name not in BASELINES:
            raise RlopsError(f"unknown baseline '{name}'; baselines: {', '.join(BASELINES)}")
        check_params(name, params)
        return ResolvedPolicy(name=name, kind="baseline", build=lambda sim: baseline(name, sim, seed, params))
    if params:
        # Only baselines read parameters; a checkpoint's behaviour is fixed by its weights.
        raise RlopsError(f"policy {policy}: only baselines take parameters (got {', '.join(sorted(params))})")
    if isinstance(policy, str | Path):
        return _from_checkpoint(str(policy))
    act = getattr(policy, "act", None)
    if callable(act):
        spec = getattr(policy, "spec", None)
        return ResolvedPolicy(
            name=type(policy).__name__,
            kind="policy",
            build=lambda sim: act,
            obs_dim=getattr(spec, "obs_dim", None),
        )
    if callable(policy):
        function: PolicyFn = policy
        return ResolvedPolicy(name=getattr(policy, "__name__", "callable"), kind="callable", build=lambda sim: function)
    raise RlopsError(f"cannot backtest {type(policy).__name__}: pass a checkpoint path, 'baseline:NAME' or a callable")


def policy_params(policy: str) -> tuple[str, ...]:
    """The parameters `policy` (a grid's policy string) reads: a baseline's own, none for a checkpoint."""
    if policy.startswith(BASELINE_PREFIX):
        return BASELINE_PARAMS.get(policy[len(BASELINE_PREFIX) :], ())
    return ()


def as_batch_actions(actions: Any, num_envs: int) -> npt.NDArray[Any]:
    array = np.asarray(actions)
    if array.shape[:1] != (num_envs,):
        raise RlopsError(f"policy returned actions of shape {array.shape} for a batch of {num_envs} observations")
    return array
