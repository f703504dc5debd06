"""Provenance guards: a checkpoint is scored out of sample, on the data it was trained on, unless told otherwise.

A trading checkpoint records (in its observation contract) the dataset it trained on, that dataset's fingerprint
and the first and last bar of its training period. A backtest whose period shares a date with that training
period is in-sample: refused unless explicitly allowed, and then labelled in-sample everywhere it is shown.
Dates are compared, not bar indices, so the guard holds whatever split either side used, and on any dataset
(the same dates of another market are still conditions the policy has seen). A different dataset fingerprint is
allowed (scoring on other data is a legitimate experiment) but never silent: it becomes a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from rlops_core.errors import RlopsError

if TYPE_CHECKING:
    from ml.agents.checkpoint import Checkpoint

DEFAULT_DATASET = "sp500"


@dataclass(frozen=True)
class Provenance:
    """What a checkpoint says about the data it learnt from; None where it does not record it."""

    dataset: str | None = None
    dataset_fingerprint: str | None = None
    training_period: tuple[str, str] | None = None  # first and last training bar, ISO timestamps


@dataclass(frozen=True)
class Verdict:
    in_sample: bool
    warnings: tuple[str, ...] = ()


def provenance_of(checkpoint: Checkpoint) -> Provenance:
    """A trading checkpoint's provenance, from its contract (or, for checkpoints written before it, its source)."""
    contract: dict[str, Any] = checkpoint.observation_contract or {}
    source = checkpoint.env_source
    period = contract.get("training_period")
    return Provenance(
        dataset=contract.get("dataset") or source.get("dataset"),
        dataset_fingerprint=contract.get("dataset_fingerprint") or checkpoint.dataset_fingerprint,
        training_period=(str(period[0]), str(period[1])) if period else None,
    )


def default_dataset(provenance: Provenance | None) -> str:
    """Where a policy is backtested when no dataset is named: a checkpoint on its own, anything else on sp500."""
    if provenance is not None and provenance.dataset:
        return provenance.dataset
    return DEFAULT_DATASET


def _day(stamp: str) -> str:
    return stamp[:10]


def check_provenance(
    name: str,
    provenance: Provenance | None,
    period: str,
    period_start: str,
    period_end: str,
    fingerprint: str,
    allow_in_sample: bool,
) -> Verdict:
    """Refuse (RlopsError) a backtest of `name` on [period_start, period_end] that overlaps its training period,
    unless `allow_in_sample`; warn when the data is not the data it trained on, or when it cannot tell."""
    if provenance is None:  # a baseline or a callable: nothing was trained
        return Verdict(in_sample=False)
    warnings: list[str] = []
    trained = provenance.training_period
    in_sample = False
    if trained is None:
        warnings.append(
            f"policy '{name}' records no training period (a checkpoint written before rlops recorded it): "
            "whether this backtest is in-sample cannot be checked"
        )
    else:
        start, end = pd.Timestamp(period_start), pd.Timestamp(period_end)
        first, last = pd.Timestamp(trained[0]), pd.Timestamp(trained[1])
        in_sample = bool(start <= last and end >= first)
        if in_sample and not allow_in_sample:
            raise RlopsError(
                f"policy '{name}' was trained on {_day(trained[0])} .. {_day(trained[1])}, which overlaps the "
                f"{period} period {_day(period_start)} .. {_day(period_end)}: an in-sample backtest; pass "
                "--allow-in-sample (allow_in_sample: true in a grid) to run it, labelled in-sample"
            )
        if in_sample:
            warnings.append(
                f"in-sample: policy '{name}' was trained on {_day(trained[0])} .. {_day(trained[1])}, which overlaps "
                f"this {period} period; its figures say how well it fits data it has seen, not how it would trade"
            )
    if provenance.dataset_fingerprint is None:
        warnings.append(f"policy '{name}' records no dataset fingerprint: the data it trained on cannot be compared")
    elif provenance.dataset_fingerprint != fingerprint:
        warnings.append(
            f"policy '{name}' was trained on dataset '{provenance.dataset}' (data+features fingerprint "
            f"{provenance.dataset_fingerprint}), not the data backtested here ({fingerprint})"
        )
    return Verdict(in_sample=in_sample, warnings=tuple(warnings))
