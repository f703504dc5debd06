"""Running observation normalization (mean and variance merged batch by batch, Chan et al.)."""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

OBS_CLIP = 10.0
_EPS = 1e-8


class RunningMeanStd:
    """Running mean / variance of observations, kept in float64 tensors.

    Tensors (not NumPy arrays) so that A3C can put the statistics in shared memory for all workers. The
    initial count is a small epsilon, as in Stable-Baselines3, so the first batch dominates without a
    division by zero.
    """

    def __init__(self, dim: int) -> None:
        self.mean = torch.zeros(dim, dtype=torch.float64)
        self.var = torch.ones(dim, dtype=torch.float64)
        self.count = torch.tensor(1e-4, dtype=torch.float64)

    def share_memory(self) -> RunningMeanStd:
        for tensor in (self.mean, self.var, self.count):
            tensor.share_memory_()  # type: ignore[no-untyped-call]  # unannotated in torch
        return self

    def update(self, batch: Tensor | NDArray[np.floating]) -> None:
        """Merge a (B, D) batch into the statistics, in place (shared-memory safe when called under a lock).

        The arithmetic runs on NumPy views of the tensors (same memory): a dozen tensor operations on a
        few rows cost more than the rest of an environment step.
        """
        data = np.asarray(batch, dtype=np.float64)
        mean, var, count = self.mean.numpy(), self.var.numpy(), float(self.count)
        batch_count = data.shape[0]
        batch_mean = data.sum(axis=0) / batch_count
        centered = data - batch_mean
        batch_var = np.square(centered, out=centered).sum(axis=0) / batch_count
        total = count + batch_count
        delta = batch_mean - mean
        m2 = var * count + batch_var * batch_count + np.square(delta) * (count * batch_count / total)
        mean += delta * (batch_count / total)
        var[:] = m2 / total
        self.count.fill_(total)

    def normalize(self, obs: Tensor) -> Tensor:
        """Standardize and clip, returning float32 like the input."""
        return torch.from_numpy(self.normalize_array(obs.detach().cpu().numpy())).to(obs.device)

    def normalize_array(self, obs: NDArray[np.floating]) -> NDArray[np.float32]:
        """:meth:`normalize` on a NumPy array (the rollout's hot path): the same float64 arithmetic."""
        scaled = obs.astype(np.float64)
        scaled -= self.mean.numpy()
        scaled /= np.sqrt(self.var.numpy() + _EPS)
        np.maximum(scaled, -OBS_CLIP, out=scaled)
        np.minimum(scaled, OBS_CLIP, out=scaled)
        return scaled.astype(np.float32)

    def state_dict(self) -> dict[str, Tensor]:
        return {"mean": self.mean.clone(), "var": self.var.clone(), "count": self.count.clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.mean.copy_(state["mean"])
        self.var.copy_(state["var"])
        self.count.copy_(state["count"])
