"""What a finished training run reports back to its caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ml.agents.evaluation import EvalResult


@dataclass
class TrainResult:
    algo: str
    global_step: int
    """Environment steps trained, in total over all environments and workers."""
    mean_return: float
    """Mean undiscounted return of the last (up to 100) training episodes."""
    episodes: int
    wall_time_s: float
    """Training time: the PPO training loop (setup and final evaluation excluded); for A3C from starting the
    workers to joining them."""
    checkpoint: Path | None
    evaluation: EvalResult | None = None
    first_step_at_target: int | None = None
    """A3C: the global step at which evaluation and training mean first both reached ``target_return``."""
    worker_updates: dict[int, int] = field(default_factory=dict)
    """A3C: gradient updates applied to the shared model, by worker process id."""
    steps_trained: int = 0
    """Steps taken by this call (less than ``global_step`` after a resume)."""
    evaluation_period: str = ""
    """What the closing evaluation ran on: for the trading env, the training period itself (so in-sample)."""

    @property
    def steps_per_s(self) -> float:
        return self.steps_trained / self.wall_time_s if self.wall_time_s > 0 else float("nan")
