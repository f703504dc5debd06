"""Device choice and process-wide torch settings of a training run."""

from __future__ import annotations

import torch

from rlops_core.errors import RlopsError


def resolve_device(requested: str) -> torch.device:
    """``cpu``, ``cuda[:N]`` (an error when CUDA is missing) or ``auto`` (CUDA when present)."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RlopsError(f"device {requested!r} requested but CUDA is not available on this machine")
    return torch.device(requested)


def configure_torch(seed: int, threads: int) -> None:
    """Seed torch's global RNG (network initialization) and fix the intra-op thread count."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
