"""A trained policy for inference: ``load_policy(path).act(obs)`` for the backtester and the server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from ml.agents.checkpoint import Checkpoint, load_checkpoint
from ml.agents.networks import ActorCritic
from ml.agents.normalization import RunningMeanStd
from ml.agents.spaces import SpaceSpec
from rlops_core.errors import RlopsError


class Policy:
    """Network, observation statistics and action bounds of one checkpoint; no training state."""

    def __init__(self, model: ActorCritic, obs_norm: RunningMeanStd | None, device: torch.device) -> None:
        self.model = model.to(device).eval()
        self.obs_norm = obs_norm
        self.device = device
        self.spec: SpaceSpec = model.spec
        self._low = np.asarray(self.spec.action_low, dtype=np.float32)
        self._high = np.asarray(self.spec.action_high, dtype=np.float32)

    def preprocess(self, obs: NDArray[np.floating] | torch.Tensor) -> torch.Tensor:
        tensor = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        if self.obs_norm is not None:
            tensor = self.obs_norm.normalize(tensor)
        return tensor.to(self.device)

    @torch.no_grad()
    def act(
        self,
        obs: NDArray[np.floating],
        deterministic: bool = True,
        generator: torch.Generator | None = None,
    ) -> NDArray[np.generic]:
        """Actions for a batch (B, D) of raw observations (a single (D,) observation gives a single action).

        Discrete actions come back as int64 ((B, assets) for multi-discrete), continuous ones clipped to
        the action bounds.
        """
        array = np.asarray(obs, dtype=np.float32)
        single = array.ndim == 1
        if array.ndim not in (1, 2) or array.shape[-1] != self.spec.obs_dim:
            raise RlopsError(f"policy expects observations of shape (B, {self.spec.obs_dim}), got {array.shape}")
        batch = array[None] if single else array
        actions = self.model.sample_actions(self.preprocess(batch), generator, deterministic).cpu()
        out: NDArray[np.generic] = actions.numpy()
        if self.spec.is_continuous:
            out = np.clip(out, self._low, self._high)
        return out[0] if single else out


def policy_from_checkpoint(checkpoint: Checkpoint, device: str | torch.device = "cpu") -> Policy:
    config = checkpoint.config
    # Built on the meta device, then given the checkpoint's tensors: initialising weights that are about to be
    # replaced (an orthogonal init's QR decomposition per layer) was most of a load, paid once per backtest cell.
    with torch.device("meta"):
        model = ActorCritic(
            checkpoint.env_spec,
            hidden_sizes=tuple(int(h) for h in config["hidden_sizes"]),
            activation=config["activation"],
            log_std_init=float(config["log_std_init"]),
        )
    model.load_state_dict(checkpoint.model_state, assign=True)  # strict: no weight stays on the meta device
    obs_norm = None
    if checkpoint.obs_norm is not None:
        obs_norm = RunningMeanStd(checkpoint.env_spec.obs_dim)
        obs_norm.load_state_dict(checkpoint.obs_norm)
    return Policy(model, obs_norm, torch.device(device))


def load_policy(path: str | Path, device: str | torch.device = "cpu") -> Policy:
    """The policy of a checkpoint written by either agent."""
    return policy_from_checkpoint(load_checkpoint(path), device)
