"""Fixed-size rollout storage for on-policy training, filled step by step and read back as minibatches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from ml.agents.gae import compute_gae, next_state_values
from ml.agents.spaces import SpaceSpec


class Batch(NamedTuple):
    """Flattened training data; every field has the batch as its first dimension."""

    obs: Tensor
    actions: Tensor
    log_probs: Tensor
    values: Tensor
    advantages: Tensor
    returns: Tensor

    def select(self, index: Tensor) -> Batch:
        # index_select rather than field[index]: the same rows, without advanced indexing's general
        # machinery (7x faster for a rollout of 1,024 observations).
        return Batch(*(field.index_select(0, index) for field in self))


class RolloutBuffer:
    """``rollout_steps`` x ``num_envs`` transitions; observations are stored already normalized.

    Filled on the CPU in NumPy arrays (a step's writes cost a microsecond each instead of a tensor
    operation's several), then handed over once per rollout as tensors on the training device.
    """

    def __init__(self, spec: SpaceSpec, rollout_steps: int, num_envs: int, device: torch.device) -> None:
        shape = (rollout_steps, num_envs)
        self.rollout_steps = rollout_steps
        self.num_envs = num_envs
        self.device = device
        self.obs = np.zeros((*shape, spec.obs_dim), dtype=np.float32)
        action_shape = shape if spec.is_discrete else (*shape, spec.action_dim)
        self.actions = np.zeros(action_shape, dtype=np.float32 if spec.is_continuous else np.int64)
        self.log_probs = np.zeros(shape, dtype=np.float32)
        self.values = np.zeros(shape, dtype=np.float32)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=np.bool_)
        self.truncated = np.zeros(shape, dtype=np.bool_)
        self.final_values = np.zeros(shape, dtype=np.float32)
        self.pos = 0

    def add(
        self,
        obs: NDArray[np.float32],
        actions: NDArray[np.generic],
        log_probs: NDArray[np.float32],
        values: NDArray[np.float32],
        rewards: NDArray[np.float32],
        terminated: NDArray[np.bool_],
        truncated: NDArray[np.bool_],
    ) -> None:
        t = self.pos
        self.obs[t] = obs
        self.actions[t] = actions
        self.log_probs[t] = log_probs
        self.values[t] = values
        self.rewards[t] = rewards
        self.terminated[t] = terminated
        self.truncated[t] = truncated
        self.final_values[t] = 0.0
        self.pos += 1

    def set_final_values(self, env_index: NDArray[np.int64], values: NDArray[np.float32]) -> None:
        """Values of ``final_obs`` for envs truncated at the step just added."""
        self.final_values[self.pos - 1, env_index] = values

    @property
    def full(self) -> bool:
        return self.pos == self.rollout_steps

    def compute(self, last_values: NDArray[np.float32], gamma: float, lam: float) -> Batch:
        """Finish the rollout: GAE, then flatten (T, N, ...) to (T * N, ...) tensors on the device."""
        values = torch.from_numpy(self.values)
        next_values = next_state_values(
            values, torch.from_numpy(last_values), torch.from_numpy(self.truncated), torch.from_numpy(self.final_values)
        )
        gae = compute_gae(
            torch.from_numpy(self.rewards),
            values,
            next_values,
            torch.from_numpy(self.terminated),
            torch.from_numpy(self.truncated),
            gamma,
            lam,
        )
        self.pos = 0
        size = self.rollout_steps * self.num_envs

        def flat(array: NDArray[np.generic] | Tensor, *shape: int) -> Tensor:
            # A copy: the next rollout overwrites these arrays while the batch may still be in use.
            tensor = torch.from_numpy(array.copy()) if isinstance(array, np.ndarray) else array
            return tensor.reshape(size, *shape).to(self.device)

        return Batch(
            obs=flat(self.obs, -1),
            actions=flat(self.actions, *self.actions.shape[2:]),
            log_probs=flat(self.log_probs),
            values=flat(self.values),
            advantages=flat(gae.advantages),
            returns=flat(gae.returns),
        )


def minibatches(batch: Batch, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
    """One shuffled pass over ``batch`` in minibatches of ``batch_size`` (the size divides the batch).

    ``generator`` is a CPU generator (the permutation is drawn on the CPU, then moved to the batch's device).
    """
    size = batch.obs.shape[0]
    if batch_size >= size:  # one minibatch: the order of its rows cannot change the update
        yield batch
        return
    # One gather of the whole batch, then contiguous slices: the same minibatches as gathering each one.
    shuffled = batch.select(torch.randperm(size, generator=generator).to(batch.obs.device))
    for start in range(0, size, batch_size):
        yield Batch(*(field[start : start + batch_size] for field in shuffled))
