"""Action distributions with an explicit random generator.

``torch.distributions`` samples from the global RNG; taking a ``torch.Generator`` instead keeps a run's
randomness in one object that a checkpoint saves, which is what makes resume bit-for-bit.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import Tensor

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class ActionDistribution(Protocol):
    def sample(self, generator: torch.Generator | None) -> Tensor: ...

    def mode(self) -> Tensor: ...

    def log_prob(self, actions: Tensor) -> Tensor:
        """Log-likelihood per batch row, shape (B,)."""
        ...

    def entropy(self) -> Tensor:
        """Entropy per batch row, shape (B,)."""
        ...


class Categorical:
    """Discrete actions from logits (B, n); actions are int64 of shape (B,)."""

    def __init__(self, logits: Tensor) -> None:
        self.log_probs = torch.log_softmax(logits, dim=-1)

    def sample(self, generator: torch.Generator | None) -> Tensor:
        # Inverse-CDF sampling: one uniform per row, several times cheaper than torch.multinomial here.
        cdf = self.log_probs.exp().cumsum(dim=-1)
        uniform = torch.rand((*cdf.shape[:-1], 1), generator=generator, dtype=cdf.dtype, device=cdf.device)
        index = torch.searchsorted(cdf, uniform * cdf[..., -1:], right=True)
        return index.squeeze(-1).clamp(max=cdf.shape[-1] - 1)

    def mode(self) -> Tensor:
        return self.log_probs.argmax(dim=-1)

    def log_prob(self, actions: Tensor) -> Tensor:
        return self.log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> Tensor:
        return -(self.log_probs.exp() * self.log_probs).sum(dim=-1)


class MultiCategorical:
    """Independent discrete sub-actions (one per asset): logits (B, sum(nvec)), actions int64 (B, len(nvec))."""

    def __init__(self, logits: Tensor, nvec: tuple[int, ...]) -> None:
        self.parts = [Categorical(chunk) for chunk in torch.split(logits, list(nvec), dim=-1)]

    def sample(self, generator: torch.Generator | None) -> Tensor:
        return torch.stack([part.sample(generator) for part in self.parts], dim=-1)

    def mode(self) -> Tensor:
        return torch.stack([part.mode() for part in self.parts], dim=-1)

    def log_prob(self, actions: Tensor) -> Tensor:
        return torch.stack([part.log_prob(actions[..., i]) for i, part in enumerate(self.parts)], dim=-1).sum(-1)

    def entropy(self) -> Tensor:
        return torch.stack([part.entropy() for part in self.parts], dim=-1).sum(-1)


class DiagGaussian:
    """Continuous actions: mean (B, k) from the network, log-std (k,) a free parameter shared by all states."""

    def __init__(self, mean: Tensor, log_std: Tensor) -> None:
        self.mean = mean
        self.log_std = log_std.expand_as(mean)

    def sample(self, generator: torch.Generator | None) -> Tensor:
        noise = torch.randn(self.mean.shape, generator=generator, dtype=self.mean.dtype, device=self.mean.device)
        return self.mean + self.log_std.exp() * noise

    def mode(self) -> Tensor:
        return self.mean

    def log_prob(self, actions: Tensor) -> Tensor:
        z = (actions - self.mean) / self.log_std.exp()
        return (-0.5 * z.square() - self.log_std - LOG_SQRT_2PI).sum(dim=-1)

    def entropy(self) -> Tensor:
        return (0.5 + LOG_SQRT_2PI + self.log_std).sum(dim=-1)
