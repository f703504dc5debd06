"""Time splits by date: train / validation / test, and walk-forward folds with an embargo gap.

Splits are half-open ranges of bar indices on the panel's time axis, so no bar belongs to two parts. An embargo
leaves bars unused between parts, so that a trailing feature window or a position held over the boundary in one
part cannot carry information into the next.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from itertools import pairwise
from typing import Any

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
    embargo: int = 0  # bars left unused before the validation and the test starts

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


def _utc(when: str | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(when)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp


def _first_at_or_after(timestamps: pd.DatetimeIndex, when: str | pd.Timestamp) -> int:
    stamp = _utc(when)
    return int(timestamps.searchsorted(stamp, side="left"))


def split_by_date(
    timestamps: pd.DatetimeIndex,
    validation_start: str | pd.Timestamp | None = None,
    test_start: str | pd.Timestamp | None = None,
    fractions: tuple[float, float] = (0.7, 0.85),
    embargo: int = 0,
    train_start: str | pd.Timestamp | None = None,
    test_end: str | pd.Timestamp | None = None,
) -> Split:
    """Train from `train_start` (default: the first bar) until `validation_start`, validation until `test_start`,
    test until `test_end` (inclusive; default: the last bar); the two starts default to the given cumulative
    fractions of the time axis. `embargo` bars are dropped before the validation and test starts."""
    n = len(timestamps)
    if not 0 < fractions[0] < fractions[1] < 1:
        raise RlopsError(f"split fractions must satisfy 0 < train < train+validation < 1 (got {fractions})")
    first = _first_at_or_after(timestamps, train_start) if train_start is not None else 0
    val = _first_at_or_after(timestamps, validation_start) if validation_start is not None else int(n * fractions[0])
    test = _first_at_or_after(timestamps, test_start) if test_start is not None else int(n * fractions[1])
    stop = _first_after(timestamps, test_end) if test_end is not None else n
    if embargo < 0:
        raise RlopsError(f"embargo must be >= 0 bars (got {embargo})")
    if not (val - embargo > first and val < test - embargo and test < stop):
        dates = f"{timestamps[0].date()} to {timestamps[-1].date()}" if n else "no dates"
        raise RlopsError(
            f"split leaves an empty part: {n} bars ({dates}), train from bar {first}, validation from bar {val}, "
            f"test from bar {test} to bar {stop}, embargo {embargo} bars; train, validation and test each need at "
            "least one bar (move the dates, or lower --embargo)"
        )
    return Split(
        train=Span(first, val - embargo), validation=Span(val, test - embargo), test=Span(test, stop), embargo=embargo
    )


def _first_after(timestamps: pd.DatetimeIndex, when: str | pd.Timestamp) -> int:
    stamp = _utc(when)
    # A date alone means the whole of that day: the first bar after it is the first on the next day.
    if stamp == stamp.normalize() and isinstance(when, str) and len(when.strip()) <= 10:
        return int(timestamps.searchsorted(stamp + pd.Timedelta(days=1), side="left"))
    return int(timestamps.searchsorted(stamp, side="right"))


def _date(value: Any, key: str, flag: str) -> str | None:
    if value is None:
        return None
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    try:
        pd.Timestamp(text)
    except (ValueError, TypeError) as exc:
        raise RlopsError(f"split {key} ({flag}): {text!r} is not a date such as 2015-01-02") from exc
    return text


@dataclass(frozen=True)
class SplitConfig:
    """How a dataset is cut into train, validation and test: by dates, or else by fractions of its bars.

    One value for every entry point (train, tune, backtest, pipeline, demo), saved with each run and in each
    checkpoint, so a later backtest of a checkpoint scores the test split it was kept away from. Each start is the
    first bar at or after its date; `test_end` is the last date of the test split (default: the last bar);
    `train_start` starts training later (the walk-forward's rolling window). `embargo` bars are left unused before
    the validation and the test starts; None means the feature warm-up (the longest rolling window), so that no
    feature of a validation or test bar is computed from bars the model was fitted on.
    """

    validation_start: str | None = None
    test_start: str | None = None
    fractions: tuple[float, float] = (0.7, 0.15)  # train and validation shares when dates are not given
    embargo: int | None = None
    train_start: str | None = None
    test_end: str | None = None

    def __post_init__(self) -> None:
        for key, flag in (("validation_start", "--validation-start"), ("test_start", "--test-start"),
                          ("train_start", "train_start"), ("test_end", "test_end")):  # fmt: skip
            object.__setattr__(self, key, _date(getattr(self, key), key, flag))
        try:
            shares = tuple(float(x) for x in self.fractions)
        except (TypeError, ValueError) as exc:
            raise RlopsError(f"split fractions (--split-fractions): {self.fractions!r} are not two numbers") from exc
        if len(shares) != 2 or not (shares[0] > 0 and shares[1] > 0 and shares[0] + shares[1] < 1):
            raise RlopsError(
                f"split fractions (--split-fractions): {','.join(map(str, self.fractions))} must be two shares "
                "TRAIN,VALIDATION, each > 0, together < 1 (the test split takes the rest), e.g. 0.7,0.15"
            )
        object.__setattr__(self, "fractions", shares)
        if self.embargo is not None and (isinstance(self.embargo, bool) or not isinstance(self.embargo, int)
                                         or self.embargo < 0):  # fmt: skip
            raise RlopsError(f"split embargo (--embargo): must be a whole number of bars >= 0 (got {self.embargo!r})")
        keys = ("train_start", "validation_start", "test_start", "test_end")
        named = [(key, _utc(getattr(self, key))) for key in keys if getattr(self, key) is not None]
        for (a, ta), (b, tb) in pairwise(named):
            if not ta < tb:
                raise RlopsError(f"split dates: {a} {getattr(self, a)} must come before {b} {getattr(self, b)}")

    def embargo_bars(self, warmup: int) -> int:
        return warmup if self.embargo is None else self.embargo

    def resolve(self, timestamps: pd.DatetimeIndex, warmup: int) -> Split:
        """The bar ranges on this time axis, with the embargo defaulting to the features' `warmup`."""
        train, validation = self.fractions
        return split_by_date(
            timestamps,
            self.validation_start,
            self.test_start,
            (train, train + validation),
            self.embargo_bars(warmup),
            self.train_start,
            self.test_end,
        )

    def describe(self) -> str:
        """One line for logs and reports: the dates or fractions and the embargo as chosen."""
        if self.validation_start or self.test_start:
            by = "its fraction"
            cut = f"validation from {self.validation_start or by}, test from {self.test_start or by}"
        else:
            train, validation = self.fractions
            cut = f"fractions {train:g}/{validation:g}/{1 - train - validation:.4g}"
        embargo = "the feature warm-up" if self.embargo is None else f"{self.embargo} bars"
        return f"{cut}, embargo {embargo}"

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["fractions"] = list(self.fractions)
        return values

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "split") -> SplitConfig:
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise RlopsError(f"{where}: must be a mapping of split settings (got {data!r})")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RlopsError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values = dict(data)
        if "fractions" in values and isinstance(values["fractions"], list | tuple):
            values["fractions"] = tuple(values["fractions"])
        try:
            return cls(**values)
        except RlopsError as exc:
            raise RlopsError(f"{where}: {exc}") from exc


# Checkpoints written before splits were recorded were trained on the fixed 70/15/15 split without an embargo.
LEGACY_SPLIT = SplitConfig(embargo=0)


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


def resolve_checked(config: SplitConfig, timestamps: pd.DatetimeIndex, warmup: int, name: str, window: int) -> Split:
    """`config`'s split of these bars, refused when data is too short to featurise, normalise and trade, with how
    many bars there are, what each part needs and why, instead of a failure deep inside feature scaling."""
    embargo = config.embargo_bars(warmup)
    by_dates = any((config.validation_start, config.test_start, config.train_start, config.test_end))
    try:
        split = config.resolve(timestamps, warmup)
    except RlopsError:
        if by_dates:
            raise
        # Fractions of too few bars leave a part empty once the embargo is taken: say what the data lacks.
        n = len(timestamps)
        cut_train, cut_test = int(n * config.fractions[0]), int(n * sum(config.fractions))
        lengths = (max(cut_train - embargo, 0), max(cut_test - embargo - cut_train, 0), n - cut_test)
        _too_little(lengths, max(cut_train - embargo - warmup, 0), n, warmup, name, window, config, embargo)
        raise
    usable_train = split.train.stop - max(split.train.start, warmup)
    lengths = (len(split.train), len(split.validation), len(split.test))
    _too_little(lengths, usable_train, len(timestamps), warmup, name, window, config, embargo)
    return split


def _too_little(
    lengths: tuple[int, int, int],
    usable_train: int,
    num_bars: int,
    warmup: int,
    name: str,
    window: int,
    config: SplitConfig,
    embargo: int,
) -> None:
    short = [part for part, size in zip(("validation", "test"), lengths[1:], strict=True) if size < MIN_PERIOD_BARS]
    if usable_train < MIN_PERIOD_BARS:
        short.insert(0, "train")
    if not short:
        return
    need_train = warmup + window + MIN_PERIOD_BARS - 1
    train_share, validation_share = config.fractions
    cut_train, cut_test = train_share, train_share + validation_share
    if any((config.validation_start, config.test_start, config.train_start, config.test_end)):
        advice = "Move the split dates (--validation-start, --test-start) so that each part gets its bars"
    else:
        total = next(
            n for n in range(1, 100 * (need_train + embargo) + 100)
            if int(n * cut_train) - embargo >= need_train
            and int(n * cut_test) - embargo - int(n * cut_train) >= MIN_PERIOD_BARS
            and n - int(n * cut_test) >= MIN_PERIOD_BARS
        )  # fmt: skip
        advice = (
            f"With this {train_share:.0%}/{validation_share:.0%}/{1 - cut_test:.0%} split and a {embargo}-bar embargo "
            f"before validation and test (--embargo; default the feature warm-up) that is at least {total} bars in all"
        )
    train, validation, test = lengths
    raise RlopsError(
        f"{name}: too little data: {num_bars} bars, split into train {train}, validation {validation}, test {test} "
        f"(too short: {', '.join(short)}). Train needs at least {need_train} bars: a {warmup}-bar feature warm-up "
        f"(the longest rolling window), then the {window}-bar observation window and {MIN_PERIOD_BARS} bars to "
        "decide and fill (the normaliser is fitted on the bars after the warm-up); validation and test need at "
        f"least {MIN_PERIOD_BARS} bars each. {advice}"
    )
