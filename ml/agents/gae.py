"""Generalized advantage estimation, with bootstrapping where an episode was cut by a time limit.

A terminated episode has no future, so the value after its last step is zero. A truncated one (time
limit, end of data) does have a future: its last reward is bootstrapped with the value of the final
observation, but the advantage recursion still stops there, because the next stored step belongs to a new
episode. With ``lam = 1`` the returns are the n-step discounted returns that A3C uses.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor


class GaeResult(NamedTuple):
    advantages: Tensor  # (T, N)
    returns: Tensor  # (T, N): advantages + values, the value-function targets


def next_state_values(values: Tensor, last_values: Tensor, truncated: Tensor, final_values: Tensor) -> Tensor:
    """V of the state that followed each step: the next stored value, or V(final obs) where truncated.

    ``values`` (T, N) were computed on the stored observations, ``last_values`` (N,) on the observation
    after the rollout, ``final_values`` (T, N) on ``final_obs`` (only read where ``truncated``).
    """
    following = torch.cat([values[1:], last_values.unsqueeze(0)], dim=0)
    return torch.where(truncated, final_values, following)


def compute_gae(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
    lam: float,
) -> GaeResult:
    """Advantages and returns for a (T, N) rollout; ``next_values`` from :func:`next_state_values`."""
    not_terminal = (~terminated).to(values.dtype)
    continues = (~(terminated | truncated)).to(values.dtype)
    deltas = (rewards + gamma * next_values * not_terminal - values).cpu().numpy()
    decay = (gamma * lam * continues).cpu().numpy()
    # The recursion runs on NumPy views: one step is three tiny operations, a few times cheaper than tensors'.
    advantages = np.empty_like(deltas)
    running = np.zeros_like(deltas[0])
    for t in range(deltas.shape[0] - 1, -1, -1):
        running = deltas[t] + decay[t] * running
        advantages[t] = running
    result = torch.from_numpy(advantages).to(values.device)
    return GaeResult(result, result + values)
