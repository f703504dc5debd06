"""The refit's training budget, derived from the budget its configuration was tuned at.

A tuning trial trains `iterations x steps_per_iteration` environment steps on the train split and is chosen for
what that budget gave. The refit trains the same configuration on train + validation, which has more bars: to
give it the same number of passes over its data (what the tuned hyperparameters were fitted to), the tuned budget
is scaled by (train + validation bars) / (train bars). `retrain_timesteps` set explicitly overrides the
derivation; either way both budgets are reported together (docs/pipeline.md, "Training budgets").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rlops_core.errors import RlopsError


@dataclass(frozen=True)
class RefitBudget:
    tuned_timesteps: int  # what each tuning trial trained: iterations x steps_per_iteration
    train_bars: int  # bars of the split the trials trained on
    refit_bars: int  # bars of train + validation, which the refit trains on
    timesteps: int  # the refit's budget
    source: str  # "derived" from the tuned budget, "retrain_timesteps" as set, or "smoke"

    def describe(self) -> str:
        """Both budgets in one line, for the stage's log and the memory-bank entry."""
        tuned = f"tuned at {self.tuned_timesteps:,} steps on {self.train_bars:,} train bars"
        if self.source == "derived":
            return (
                f"{tuned}; refit for {self.timesteps:,} steps on {self.refit_bars:,} train + validation bars "
                f"(the tuned budget x {self.refit_bars:,} / {self.train_bars:,} bars: the same passes over the data)"
            )
        why = "as retrain_timesteps sets it" if self.source == "retrain_timesteps" else "the agents' smoke budget"
        return f"{tuned}; refit for {self.timesteps:,} steps on {self.refit_bars:,} train + validation bars ({why})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def refit_budget(
    iterations: int, steps_per_iteration: int, train_bars: int, refit_bars: int, retrain_timesteps: int | None
) -> RefitBudget:
    """The refit's budget: `retrain_timesteps` if set, else the tuned budget scaled by the bars trained on."""
    if train_bars < 1 or refit_bars < train_bars:
        raise RlopsError(f"refit budget: train + validation ({refit_bars} bars) must hold train ({train_bars} bars)")
    tuned = iterations * steps_per_iteration
    if retrain_timesteps is not None:
        return RefitBudget(tuned, train_bars, refit_bars, retrain_timesteps, "retrain_timesteps")
    return RefitBudget(tuned, train_bars, refit_bars, round(tuned * refit_bars / train_bars), "derived")
