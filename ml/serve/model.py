"""Loading the served checkpoint (local or s3://) and one forward pass that yields everything /v1/act returns."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from numpy.typing import NDArray

from ml.agents.checkpoint import Checkpoint, load_checkpoint
from ml.agents.distributions import Categorical, DiagGaussian
from ml.agents.policy import Policy, policy_from_checkpoint
from ml.data import storage
from ml.envs.contract import ObservationContract
from ml.serve.settings import ServeSettings
from rlops_core.errors import RlopsError


@dataclass(frozen=True)
class ModelInfo:
    """What /v1/model, /readyz and the metrics say about the served checkpoint."""

    name: str
    version: str
    algo: str
    checkpoint: str
    checkpoint_sha256: str
    dataset_fingerprint: str | None
    created_at: str
    global_step: int
    environment: str
    obs_dim: int
    action_kind: str
    """discrete, continuous or multi_discrete (one discrete choice per asset)."""
    num_actions: int
    action_dim: int
    action_nvec: tuple[int, ...]
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    contract: ObservationContract | None = None
    """How to build observations from raw bars; None when the checkpoint has none (see ``lacks``)."""
    lacks: tuple[str, ...] = ()
    """What an older or non-trading checkpoint does not carry, in words (shown by /v1/model)."""


@dataclass(frozen=True)
class Inference:
    """Outputs for a batch of B observations.

    Discrete policies fill ``probabilities`` (B, n); multi-discrete ones ``sub_probabilities``, one (B, n_i)
    array per sub-action (they may differ in width); continuous ones ``mean`` and ``std`` (B, k).
    """

    actions: NDArray[np.generic]
    values: NDArray[np.float32]
    probabilities: NDArray[np.float32] | None = None
    sub_probabilities: tuple[NDArray[np.float32], ...] | None = None
    mean: NDArray[np.float32] | None = None
    std: NDArray[np.float32] | None = None

    def rows(self, start: int, stop: int) -> Inference:
        """The outputs of observations ``start:stop``: one request's share of a coalesced batch."""
        return Inference(
            actions=self.actions[start:stop],
            values=self.values[start:stop],
            probabilities=None if self.probabilities is None else self.probabilities[start:stop],
            sub_probabilities=None
            if self.sub_probabilities is None
            else tuple(part[start:stop] for part in self.sub_probabilities),
            mean=None if self.mean is None else self.mean[start:stop],
            std=None if self.std is None else self.std[start:stop],
        )


class ServedModel(Protocol):
    """What the app needs from a model; tests substitute wrappers (a gate, a failure) around the real one."""

    @property
    def info(self) -> ModelInfo: ...

    def infer(self, obs: NDArray[np.float32]) -> Inference:
        """Outputs for a (B, obs_dim) float32 batch; called from one worker thread at a time."""
        ...


class PolicyModel:
    """A loaded :class:`Policy` answering with actions, their distribution and the value estimate."""

    def __init__(self, policy: Policy, info: ModelInfo) -> None:
        self.policy = policy
        self._info = info
        self._low = np.asarray(info.action_low, dtype=np.float32)
        self._high = np.asarray(info.action_high, dtype=np.float32)

    @property
    def info(self) -> ModelInfo:
        return self._info

    @torch.no_grad()
    def infer(self, obs: NDArray[np.float32]) -> Inference:
        model = self.policy.model
        inputs = self.policy.preprocess(obs)
        dist = model.distribution(inputs)
        # mode() is what Policy.act(deterministic=True) returns, so served actions equal the backtester's.
        actions = dist.mode().cpu().numpy()
        values = model.value(inputs).cpu().numpy()
        if isinstance(dist, Categorical):
            return Inference(actions=actions, values=values, probabilities=dist.log_probs.exp().cpu().numpy())
        parts = getattr(dist, "parts", None)
        if isinstance(parts, list) and all(isinstance(part, Categorical) for part in parts):
            # Multi-discrete: independent categoricals, one per sub-action (asset).
            sub = tuple(part.log_probs.exp().cpu().numpy() for part in parts)
            return Inference(actions=actions, values=values, sub_probabilities=sub)
        if isinstance(dist, DiagGaussian):
            std = dist.log_std.exp().cpu().numpy()
            return Inference(actions=np.clip(actions, self._low, self._high), values=values, mean=actions, std=std)
        raise RlopsError(f"model {self._info.name}: unsupported action distribution {type(dist).__name__}")


def _read_checkpoint(location: str) -> tuple[Checkpoint, str]:
    """The checkpoint and the SHA-256 of its bytes; S3 objects go through a private temporary file."""
    if not storage.is_s3(location):
        checkpoint = load_checkpoint(location)
        return checkpoint, hashlib.sha256(Path(location).read_bytes()).hexdigest()
    try:
        data = storage.read_bytes(location)
    except RlopsError as exc:
        raise RlopsError(f"checkpoint {exc}") from exc
    with tempfile.TemporaryDirectory(prefix="rlops-serve-") as folder:
        local = Path(folder) / "checkpoint.pt"
        local.write_bytes(data)
        try:
            checkpoint = load_checkpoint(local)
        except RlopsError as exc:
            # The temporary path means nothing to the user; name the object they asked for.
            raise RlopsError(str(exc).replace(str(local), location)) from exc
    return checkpoint, hashlib.sha256(data).hexdigest()


def load_model(settings: ServeSettings) -> PolicyModel:
    """Read, check and rebuild the policy; every failure is an :class:`RlopsError` naming the checkpoint."""
    location = settings.checkpoint
    checkpoint, digest = _read_checkpoint(location)
    try:
        policy = policy_from_checkpoint(checkpoint)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        # policy_from_checkpoint lets a config/weights mismatch escape as a raw torch or KeyError.
        raise RlopsError(f"checkpoint {location} cannot be rebuilt into a policy: {type(exc).__name__}: {exc}") from exc
    spec = policy.spec
    contract, lacks = _contract(checkpoint, location, spec.obs_dim)
    info = ModelInfo(
        name=settings.model_name or f"{checkpoint.algo}-{spec.name}",
        version=settings.model_version or digest[:12],
        algo=checkpoint.algo,
        checkpoint=location,
        checkpoint_sha256=digest,
        dataset_fingerprint=checkpoint.dataset_fingerprint,
        created_at=checkpoint.created_at,
        global_step=checkpoint.global_step,
        environment=spec.name,
        obs_dim=spec.obs_dim,
        action_kind=str(spec.action_kind),
        num_actions=spec.num_actions,
        action_dim=spec.action_dim,
        action_nvec=tuple(int(n) for n in getattr(spec, "action_nvec", ())),
        action_low=tuple(spec.action_low),
        action_high=tuple(spec.action_high),
        contract=contract,
        lacks=lacks,
    )
    return PolicyModel(policy, info)


def _contract(
    checkpoint: Checkpoint, location: str, obs_dim: int
) -> tuple[ObservationContract | None, tuple[str, ...]]:
    """The checkpoint's observation contract, or what is missing and why (old and gym checkpoints still serve)."""
    if checkpoint.observation_contract is None:
        source = checkpoint.env_source
        if source.get("kind") == "trading":
            reason = (
                "observation contract (feature layout, training normaliser, symbols): this checkpoint predates "
                "it, so /v1/act/bars cannot build observations; retrain to get one, or send built observations "
                "to /v1/act"
            )
        else:
            reason = (
                f"observation contract: trained on {source.get('env_id', source.get('kind', 'an unknown env'))}, "
                "not on market data, so /v1/act/bars does not apply"
            )
        return None, (reason,)
    try:
        contract = ObservationContract.from_dict(dict(checkpoint.observation_contract))
    except (RlopsError, TypeError, ValueError) as exc:
        raise RlopsError(f"checkpoint {location}: unreadable observation contract: {exc}") from exc
    if contract.obs_dim != obs_dim:
        raise RlopsError(
            f"checkpoint {location}: its observation contract builds {contract.obs_dim} values, the network takes "
            f"{obs_dim}"
        )
    return contract, ()
