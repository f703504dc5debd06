"""The acting half of an :class:`ActorCritic` as NumPy arrays, for collecting rollouts on the CPU.

Collection runs one forward pass per environment step on a handful of rows. At that size torch spends most
of a pass in per-operation dispatch (5-10 us an operation, twenty-odd operations for two networks, sampling
and log-probabilities) while the arithmetic takes a few microseconds; the same arithmetic on NumPy arrays
costs a fraction of the overhead. The weights do not change during a rollout, so a snapshot is taken once
per rollout, with the actor's and critic's layers fused (first layers stacked, later ones block-diagonal) so
that each layer is one matrix product for both networks.

Random draws come from the trainer's ``torch.Generator`` in one call per rollout (:meth:`draw`), so a
checkpoint's generator state still determines everything that follows.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from ml.agents.distributions import LOG_SQRT_2PI
from ml.agents.networks import ActorCritic
from ml.agents.spaces import SpaceSpec
from ml.envs.execution import jit

F32 = NDArray[np.float32]


class RolloutStep(NamedTuple):
    """What acting on one batch of observations gives the rollout."""

    actions: NDArray[np.generic]  # int64 (B,) / (B, parts) for discrete kinds, float32 (B, k) continuous
    log_probs: F32  # (B,)
    values: F32  # (B,)


def _weight(layer: nn.Linear) -> F32:
    """(in, out) float32 copy of a Linear's weight, so that ``x @ w`` is the layer."""
    return np.ascontiguousarray(layer.weight.detach().cpu().numpy().T, dtype=np.float32)


def _bias(layer: nn.Linear) -> F32:
    return np.array(layer.bias.detach().cpu().numpy(), dtype=np.float32)


def _fuse(actor: list[nn.Linear], critic: list[nn.Linear]) -> tuple[list[F32], list[F32]]:
    """Per layer, one weight computing both networks: the first layer's weights side by side (both read the
    observation), later ones block-diagonal (each reads only its own network's previous layer)."""
    weights, biases = [], []
    for depth, (a, c) in enumerate(zip(actor, critic, strict=True)):
        wa, wc = _weight(a), _weight(c)
        if depth == 0:
            fused = np.concatenate([wa, wc], axis=1)
        else:
            fused = np.zeros((wa.shape[0] + wc.shape[0], wa.shape[1] + wc.shape[1]), dtype=np.float32)
            fused[: wa.shape[0], : wa.shape[1]] = wa
            fused[wa.shape[0] :, wa.shape[1] :] = wc
        weights.append(fused)
        biases.append(np.concatenate([_bias(a), _bias(c)]))
    return weights, biases


class RolloutPolicy:
    """A snapshot of a model's policy and value for acting; :meth:`step` matches ``ActorCritic.step``'s
    distribution, log-probabilities and values (tests compare them)."""

    def __init__(self, model: ActorCritic) -> None:
        self.spec: SpaceSpec = model.spec
        actor = [layer for layer in model.actor_layers if isinstance(layer, nn.Linear)]
        critic = [layer for layer in model.critic_layers if isinstance(layer, nn.Linear)]
        self._relu = any(isinstance(layer, nn.ReLU) for layer in model.actor_layers)
        self._weights, self._biases = _fuse(actor, critic)
        self._head_size = self.spec.head_size
        # A discrete action is a multi-discrete one with a single part: one sampling loop serves both.
        self._choices = self.spec.action_nvec if self.spec.action_kind == "multi_discrete" else (self.spec.num_actions,)
        self._log_std = model.log_std.detach().cpu().numpy().astype(np.float32)
        self._std = np.exp(self._log_std)
        self._log_prob_offset = np.float32(-(self._log_std.sum() + LOG_SQRT_2PI * len(self._log_std)))

    def _forward(self, obs: F32) -> F32:
        x = obs
        last = len(self._weights) - 1
        for depth, (weight, bias) in enumerate(zip(self._weights, self._biases, strict=True)):
            x = x @ weight
            x += bias
            if depth < last and self._relu:
                np.maximum(x, 0.0, out=x)
            elif depth < last:
                np.tanh(x, out=x)
        return x

    def values(self, obs: F32) -> F32:
        """State values (B,) of (normalized) observations (B, D)."""
        return self._forward(obs)[:, self._head_size]

    def draw(self, generator: torch.Generator, steps: int, num_envs: int) -> F32:
        """The random numbers ``steps`` calls of :meth:`step` on ``num_envs`` rows consume, in one call:
        uniforms (steps, B, sub-actions) for discrete kinds, standard normals (steps, B, k) for continuous."""
        if self.spec.is_continuous:
            return torch.randn((steps, num_envs, self.spec.action_dim), generator=generator).numpy()
        return torch.rand((steps, num_envs, len(self._choices)), generator=generator).numpy()

    def step(self, obs: F32, draws: F32) -> RolloutStep:
        """Sample actions for observations (B, D) from one step's ``draws`` (a row of :meth:`draw`)."""
        out = self._forward(obs)
        head, values = out[:, : self._head_size], out[:, self._head_size]
        if self.spec.is_continuous:
            actions = head + self._std * draws
            log_probs = (-0.5 * np.square(draws)).sum(axis=1) + self._log_prob_offset
            return RolloutStep(actions, log_probs.astype(np.float32), np.ascontiguousarray(values))
        choices = np.empty(draws.shape, dtype=np.int64)
        log_probs = np.zeros(len(obs), dtype=np.float32)
        start = 0
        for part, size in enumerate(self._choices):
            _sample_categorical(head[:, start : start + size], draws[:, part], choices, log_probs, part)
            start += size
        return RolloutStep(choices[:, 0] if self.spec.is_discrete else choices, log_probs, np.ascontiguousarray(values))


@jit
def _sample_categorical(logits: F32, uniforms: F32, actions: NDArray[np.int64], log_probs: F32, column: int) -> None:
    """Per row: the inverse-CDF sample of the softmax of ``logits`` at ``uniforms`` (the smallest index whose
    cumulative weight exceeds the uniform's share of the total, as ``searchsorted(..., right=True)``) into
    ``actions[:, column]``, and its log-probability added to ``log_probs``."""
    rows, choices = logits.shape
    for row in range(rows):
        peak = logits[row, 0]
        for k in range(1, choices):
            peak = max(peak, logits[row, k])
        total = 0.0
        for k in range(choices):
            total += np.exp(logits[row, k] - peak)
        threshold = uniforms[row] * total
        cumulative = 0.0
        chosen = choices - 1
        for k in range(choices):
            cumulative += np.exp(logits[row, k] - peak)
            if cumulative > threshold:
                chosen = k
                break
        actions[row, column] = chosen
        log_probs[row] += logits[row, chosen] - peak - np.log(total)
