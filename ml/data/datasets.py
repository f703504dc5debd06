"""Named datasets that need no network: real daily index history shipped inside the `arch` package."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import pandas as pd

from ml.data.bars import Bars
from ml.data.errors import DataValidationError
from ml.data.loader import LoadOptions, find_gaps, validate_table
from rlops_core.errors import RlopsError


@dataclass(frozen=True)
class NamedDataset:
    name: str
    description: str
    modules: tuple[tuple[str, str], ...]  # (symbol, arch.data module)


DATASETS: dict[str, NamedDataset] = {
    item.name: item
    for item in (
        NamedDataset("sp500", "S&P 500 index, daily OHLCV, 1999-01-04 to 2018-12-31", (("SPX", "arch.data.sp500"),)),
        NamedDataset(
            "nasdaq",
            "NASDAQ Composite, daily OHLCV, 1999-01-04 to 2018-12-31",
            (("IXIC", "arch.data.nasdaq"),),
        ),
        NamedDataset(
            "us_indices",
            "S&P 500 and NASDAQ Composite together (two assets), daily, 1999-2018",
            (("SPX", "arch.data.sp500"), ("IXIC", "arch.data.nasdaq")),
        ),
    )
}


def is_named(spec: str) -> bool:
    return spec in DATASETS


def load_named(name: str) -> Bars:
    """Load a named dataset through the same validation as any user file."""
    if name not in DATASETS:
        raise RlopsError(f"unknown dataset '{name}'; named datasets: {', '.join(sorted(DATASETS))}")
    frames = []
    for symbol, module_name in DATASETS[name].modules:
        raw = importlib.import_module(module_name).load().reset_index()
        raw.insert(1, "symbol", symbol)
        frame, issues = validate_table(raw, f"{name}:{symbol}", LoadOptions(tz="UTC"))
        if issues or frame is None:
            raise DataValidationError(issues)
        frames.append(frame)
    combined = pd.concat(frames, ignore_index=True).sort_values(["symbol", "timestamp"], kind="stable")
    combined = combined.reset_index(drop=True)
    return Bars(frame=combined, name=name, gaps=tuple(find_gaps(combined)))
