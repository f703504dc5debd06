"""Time splits by date: train / validation / test, and walk-forward folds with an embargo gap.

Splits are half-open ranges of bar indices on the panel's time axis, so no bar belongs to two parts. An embargo
leaves bars unused between parts, so that a trailing feature window or a position held over the boundary in one
part cannot carry information into the next.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from rlops_core.errors import RlopsError


@dataclass(frozen=True)
class Span:
    """Bars [start, stop) of the time axis."""

    start: int
    stop: int

    def __post_init__(self) -> None:
        if self.stop <= self.start:
            raise RlopsError(f"empty period: bars [{self.start}, {self.stop})")

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Split:
    train: Span
    validation: Span
    test: Span

    def part(self, name: str) -> Span:
        """A named part; `train+validation` is everything before the test split (for the final refit)."""
        if name == "train+validation":
            return Span(self.train.start, self.validation.stop)
        if name not in {"train", "validation", "test"}:
            raise RlopsError(f"unknown split '{name}'; use train, validation, test or train+validation")
        span: Span = getattr(self, name)
        return span


@dataclass(frozen=True)
class Fold:
    index: int
    train: Span
    test: Span


def _first_at_or_after(timestamps: pd.DatetimeIndex, when: str | pd.Timestamp) -> int:
    stamp = pd.Timestamp(when)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return int(timestamps.searchsorted(stamp, side="left"))


def split_by_date(
    timestamps: pd.DatetimeIndex,
    validation_start: str | pd.Timestamp | None = None,
    test_start: str | pd.Timestamp | None = None,
    fractions: tuple[float, float] = (0.7, 0.85),
    embargo: int = 0,
) -> Split:
    """Train before `validation_start`, validation before `test_start`, test after; dates default to the
    given fractions of the time axis. `embargo` bars are dropped before the validation and test starts."""
    n = len(timestamps)
    if not 0 < fractions[0] < fractions[1] < 1:
        raise RlopsError(f"split fractions must satisfy 0 < train < train+validation < 1 (got {fractions})")
    val = _first_at_or_after(timestamps, validation_start) if validation_start is not None else int(n * fractions[0])
    test = _first_at_or_after(timestamps, test_start) if test_start is not None else int(n * fractions[1])
    if embargo < 0:
        raise RlopsError(f"embargo must be >= 0 bars (got {embargo})")
    if not (val - embargo > 0 and val < test - embargo and test < n):
        raise RlopsError(
            f"split dates leave an empty part: {n} bars, validation from bar {val}, test from bar {test}, "
            f"embargo {embargo}; train, validation and test each need at least one bar"
        )
    return Split(train=Span(0, val - embargo), validation=Span(val, test - embargo), test=Span(test, n))


def walk_forward(
    num_bars: int,
    folds: int,
    test_size: int,
    embargo: int = 0,
    train_size: int | None = None,
) -> list[Fold]:
    """Consecutive out-of-sample test windows at the end of the data, each trained on the bars before it
    (expanding window, or rolling when `train_size` is given), with `embargo` bars between train and test."""
    if folds < 1 or test_size < 1 or embargo < 0:
        raise RlopsError(
            f"walk-forward needs folds >= 1, test_size >= 1, embargo >= 0 (got {folds}, {test_size}, {embargo})"
        )
    first_test = num_bars - folds * test_size
    result = []
    for k in range(folds):
        test_start = first_test + k * test_size
        train_stop = test_start - embargo
        train_start = 0 if train_size is None else train_stop - train_size
        if train_start < 0 or train_stop <= train_start:
            raise RlopsError(
                f"walk-forward fold {k}: not enough bars ({num_bars}) for {folds} folds of {test_size} test bars"
                f" with embargo {embargo}" + (f" and {train_size} train bars" if train_size else "")
            )
        result.append(Fold(k, Span(train_start, train_stop), Span(test_start, test_start + test_size)))
    return result


# A decision at one bar's close and its fill at the next: the fewest bars any backtest or episode can use.
MIN_PERIOD_BARS = 2


def require_enough_bars(split: Split, num_bars: int, warmup: int, name: str, window: int) -> None:
    """Refuse data too short to featurise, normalise and trade, with how many bars there are, what each part
    needs and why, instead of a failure deep inside feature scaling."""
    usable_train = split.train.stop - max(split.train.start, warmup)
    short = [part for part in ("validation", "test") if len(getattr(split, part)) < MIN_PERIOD_BARS]
    if usable_train < MIN_PERIOD_BARS:
        short.insert(0, "train")
    if not short:
        return
    need_train = warmup + window + MIN_PERIOD_BARS - 1
    total = next(
        n for n in range(1, 100 * need_train + 100)
        if int(n * 0.7) >= need_train and int(n * 0.85) - int(n * 0.7) >= MIN_PERIOD_BARS
        and n - int(n * 0.85) >= MIN_PERIOD_BARS
    )  # fmt: skip
    raise RlopsError(
        f"{name}: too little data: {num_bars} bars, split into train {len(split.train)}, validation "
        f"{len(split.validation)}, test {len(split.test)} (too short: {', '.join(short)}). Train needs at least "
        f"{need_train} bars: a {warmup}-bar feature warm-up (the longest rolling window), then the {window}-bar "
        f"observation window and {MIN_PERIOD_BARS} bars to decide and fill (the normaliser is fitted on the bars after "
        f"the warm-up); validation and test need at least {MIN_PERIOD_BARS} bars each. With the default 70/15/15 split "
        f"that is at least {total} bars in all"
    )
