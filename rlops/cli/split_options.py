"""The split flags every command that trains or scores on a split takes, read into one `SplitConfig`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ml.data.splits import SplitConfig

ValidationStart = Annotated[
    str | None,
    typer.Option("--validation-start", help="first date of the validation split (default: by --split-fractions)"),
]
TestStart = Annotated[
    str | None, typer.Option("--test-start", help="first date of the test split (default: by --split-fractions)")
]
SplitFractions = Annotated[
    str | None,
    typer.Option(
        "--split-fractions", help="TRAIN,VALIDATION shares of the bars where no date is given; test takes the rest"
    ),
]
Embargo = Annotated[
    int | None,
    typer.Option(
        "--embargo", help="bars left unused before the validation and test starts (default: the feature warm-up)"
    ),
]


def split_from_flags(
    validation_start: str | None, test_start: str | None, fractions: str | None, embargo: int | None
) -> SplitConfig | None:
    """The split the flags ask for, or None when no split flag was given (the command's own default applies)."""
    from ml.data.splits import SplitConfig
    from rlops_core.errors import RlopsError

    if validation_start is None and test_start is None and fractions is None and embargo is None:
        return None
    shares: tuple[float, ...] = SplitConfig().fractions
    if fractions is not None:
        try:
            shares = tuple(float(part) for part in fractions.split(","))
        except ValueError:
            shares = ()
        if len(shares) != 2:
            raise RlopsError(f"--split-fractions {fractions!r}: expected TRAIN,VALIDATION such as 0.7,0.15")
    return SplitConfig(validation_start=validation_start, test_start=test_start, fractions=shares, embargo=embargo)  # type: ignore[arg-type]
