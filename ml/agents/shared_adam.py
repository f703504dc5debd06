"""Adam whose moment estimates live in shared memory, so Hogwild workers update one optimizer state.

``torch.optim.Adam`` creates its state lazily in whichever process steps first, which would give every A3C
worker a private state. Here the state is created eagerly, moved to shared memory, and handed to the workers
as plain tensors (:class:`AdamSlot`) that each worker attaches to its own optimizer object.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn


class AdamSlot(NamedTuple):
    """Shared state of one parameter."""

    step: Tensor
    exp_avg: Tensor
    exp_avg_sq: Tensor


def _shared(tensor: Tensor) -> Tensor:
    tensor.share_memory_()  # type: ignore[no-untyped-call]  # torch leaves this method unannotated
    return tensor


class SharedAdam(torch.optim.Adam):
    def __init__(self, params: Iterable[nn.Parameter], lr: float, slots: list[AdamSlot] | None = None) -> None:
        # fused: one kernel over all parameters; it updates the shared moments in place like the others.
        super().__init__(params, lr=lr, fused=True)
        parameters = self.parameters_in_order()
        if slots is None:
            slots = [
                AdamSlot(_shared(torch.zeros(())), _shared(torch.zeros_like(p)), _shared(torch.zeros_like(p)))
                for p in parameters
            ]
        if len(slots) != len(parameters):
            raise ValueError(f"{len(slots)} shared Adam slots for {len(parameters)} parameters")
        for param, slot in zip(parameters, slots, strict=True):
            self.state[param] = {"step": slot.step, "exp_avg": slot.exp_avg, "exp_avg_sq": slot.exp_avg_sq}
        self.slots = slots

    def parameters_in_order(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def load_into_shared(self, state_dict: dict[str, Any]) -> None:
        """Copy a saved optimizer state into the shared tensors (``load_state_dict`` would replace them)."""
        saved = state_dict["state"]
        for index, slot in enumerate(self.slots):
            if index in saved:
                slot.step.copy_(saved[index]["step"])
                slot.exp_avg.copy_(saved[index]["exp_avg"])
                slot.exp_avg_sq.copy_(saved[index]["exp_avg_sq"])
