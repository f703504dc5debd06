"""Which action a one-observation float32 forward pass picks, known from one stacked pass without running it.

`Policy.act` on one observation computes the logits in float32 with one-row matrix products; a stacked pass
rounds differently, so near ties between two actions can flip. Rounding errors are bounded, though, whatever
the summation order: a float32 dot product of K terms plus a bias is within gamma(K+1) * (sum(|w| |x|) + |b|)
of the exact value (gamma(n) = n u / (1 - n u), u = 2^-24; Higham, Accuracy and Stability of Numerical
Algorithms, 3.1), an input already off by e moves it by at most |w| e more, tanh and relu are 1-Lipschitz and
tanh's float32 result lies within a few ulps of the exact one. Carried through the layers alongside the stacked
pass, that bound says how far any float32 evaluation of a row, the one-row one included, can be from the exact
logits, so how far it can be from the stacked ones: twice the bound. Every row whose stacked best action leads
the runner-up by more than that, plus what the log-softmax's own roundings can take away, is settled; only the
rows left unsure (near ties) need the one-row pass itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

_U = 2.0**-24  # float32's unit roundoff
_TANH_ERROR = 16 * _U  # tanh's float32 result is a few ulps from the exact one; |tanh| <= 1
_SAFETY = 2.0  # covers the rounding of the bound's own float32 arithmetic (relative K u at most)


def _gamma(terms: int) -> float:
    n = terms + 1  # the bias is one more term
    return n * _U / (1 - n * _U)


class CertainArgmax:
    """The argmax of a stacked MLP's logits where every float32 evaluation of one row is known to agree.

    `layers` as `StackedPolicy` keeps them: (weights (P, D, H), biases (P, 1, H)) pairs, and activations.
    """

    def __init__(self, layers: Sequence[tuple[Tensor, Tensor] | Any]) -> None:
        # Per Linear: the weights, |weights| twice and the biases, |biases|, zeros stacked along the policy axis,
        # so one batched product per layer gives the value, its magnitude and the carried bound together.
        self.layers: list[tuple[Tensor, Tensor, float] | str] = []
        for layer in layers:
            if isinstance(layer, tuple):
                weights, biases = layer
                stacked_weights = torch.cat([weights, weights.abs(), weights.abs()])
                stacked_biases = torch.cat([biases, biases.abs(), torch.zeros_like(biases)])
                self.layers.append((stacked_weights, stacked_biases, _gamma(weights.shape[1])))
            else:
                self.layers.append("tanh" if layer in (torch.tanh, torch.tanh_) else "relu")

    def __call__(self, x: Tensor) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """For float32 observations (P, B, D): each row's action, and whether it is certain (else unknown)."""
        value = x
        bound = torch.zeros_like(x)  # how far any float32 evaluation can be from the exact value
        for layer in self.layers:
            if isinstance(layer, str):
                value, bound = (
                    (torch.tanh(value), bound + _TANH_ERROR) if layer == "tanh" else (torch.relu(value), bound)
                )
            else:
                weights, biases, gamma = layer
                out = torch.baddbmm(biases, torch.cat([value, value.abs() + bound, bound]), weights)
                value, magnitude, carried = out.chunk(3)
                bound = torch.add(carried, magnitude, alpha=gamma)
        logits, slack = value.numpy(), 2 * _SAFETY * bound.numpy()
        best = logits.argmax(axis=-1)
        picked = np.take_along_axis(logits - slack, best[..., None], axis=-1)[..., 0]
        others = logits + slack
        np.put_along_axis(others, best[..., None], -np.inf, axis=-1)
        # log_softmax subtracts the max, then log-sum-exp (the same for every action): each step rounds by up
        # to half an ulp of values no larger than twice the largest logit plus log(actions).
        largest = np.abs(logits).max(axis=-1) + slack.max(axis=-1)
        room = 4 * _U * (12 * largest + 4 * math.log(max(logits.shape[-1], 2)) + 1)
        certain = picked - room > others.max(axis=-1)
        return best.astype(np.int64), certain
