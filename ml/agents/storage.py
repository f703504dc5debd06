"""Fixed-size rollout storage for on-policy training, filled step by step and read back as minibatches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
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
        return Batch(*(field[index] for field in self))


class RolloutBuffer:
    """``rollout_steps`` x ``num_envs`` transitions; observations are stored already normalized."""

    def __init__(self, spec: SpaceSpec, rollout_steps: int, num_envs: int, device: torch.device) -> None:
        shape = (rollout_steps, num_envs)
        self.rollout_steps = rollout_steps
        self.num_envs = num_envs
        self.obs = torch.zeros((*shape, spec.obs_dim), device=device)
        if spec.is_discrete:
            self.actions = torch.zeros(shape, dtype=torch.long, device=device)
        elif spec.is_continuous:
            self.actions = torch.zeros((*shape, spec.action_dim), device=device)
        else:
            self.actions = torch.zeros((*shape, spec.action_dim), dtype=torch.long, device=device)
        self.log_probs = torch.zeros(shape, device=device)
        self.values = torch.zeros(shape, device=device)
        self.rewards = torch.zeros(shape, device=device)
        self.terminated = torch.zeros(shape, dtype=torch.bool, device=device)
        self.truncated = torch.zeros(shape, dtype=torch.bool, device=device)
        self.final_values = torch.zeros(shape, device=device)
        self.pos = 0

    def add(
        self,
        obs: Tensor,
        actions: Tensor,
        log_probs: Tensor,
        values: Tensor,
        rewards: Tensor,
        terminated: Tensor,
        truncated: Tensor,
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

    def set_final_values(self, env_index: Tensor, values: Tensor) -> None:
        """Values of ``final_obs`` for envs truncated at the step just added."""
        self.final_values[self.pos - 1, env_index] = values

    @property
    def full(self) -> bool:
        return self.pos == self.rollout_steps

    def compute(self, last_values: Tensor, gamma: float, lam: float) -> Batch:
        """Finish the rollout: GAE, then flatten (T, N, ...) to (T * N, ...)."""
        next_values = next_state_values(self.values, last_values, self.truncated, self.final_values)
        gae = compute_gae(self.rewards, self.values, next_values, self.terminated, self.truncated, gamma, lam)
        self.pos = 0
        size = self.rollout_steps * self.num_envs
        return Batch(
            obs=self.obs.reshape(size, -1),
            actions=self.actions.reshape(size, *self.actions.shape[2:]),
            log_probs=self.log_probs.reshape(size),
            values=self.values.reshape(size),
            advantages=gae.advantages.reshape(size),
            returns=gae.returns.reshape(size),
        )


def minibatches(batch: Batch, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
    """One shuffled pass over ``batch`` in minibatches of ``batch_size`` (the size divides the batch)."""
    size = batch.obs.shape[0]
    if batch_size >= size:  # one minibatch: the order of its rows cannot change the update
        yield batch
        return
    order = torch.randperm(size, generator=generator).to(batch.obs.device)
    for start in range(0, size, batch_size):
        yield batch.select(order[start : start + batch_size])
