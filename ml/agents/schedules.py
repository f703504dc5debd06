"""Learning-rate schedules as functions of training progress (fraction of the step budget used)."""

from __future__ import annotations

from typing import Literal

LrSchedule = Literal["constant", "linear"]


def learning_rate_at(initial: float, schedule: LrSchedule, progress: float) -> float:
    """Learning rate after ``progress`` in [0, 1] of training; ``linear`` anneals to zero at the end."""
    progress = min(max(progress, 0.0), 1.0)
    if schedule == "constant":
        return initial
    if schedule == "linear":
        return initial * (1.0 - progress)
    raise ValueError(f"unknown learning-rate schedule {schedule!r}")
