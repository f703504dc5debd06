"""Running observation normalization (mean and variance merged batch by batch, Chan et al.)."""

from __future__ import annotations

import torch
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

    def update(self, batch: Tensor) -> None:
        """Merge a (B, D) batch into the statistics, in place (shared-memory safe when called under a lock)."""
        batch = batch.to(torch.float64)
        batch_count = batch.shape[0]
        batch_mean = batch.mean(dim=0)
        batch_var = batch.var(dim=0, unbiased=False)
        total = self.count + batch_count
        delta = batch_mean - self.mean
        new_mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta.square() * self.count * batch_count / total
        self.mean.copy_(new_mean)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def normalize(self, obs: Tensor) -> Tensor:
        """Standardize and clip, returning float32 like the input."""
        scaled = (obs.to(torch.float64) - self.mean) / torch.sqrt(self.var + _EPS)
        return scaled.clamp(-OBS_CLIP, OBS_CLIP).to(torch.float32)

    def state_dict(self) -> dict[str, Tensor]:
        return {"mean": self.mean.clone(), "var": self.var.clone(), "count": self.count.clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.mean.copy_(state["mean"])
        self.var.copy_(state["var"])
        self.count.copy_(state["count"])
