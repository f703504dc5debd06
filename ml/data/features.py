"""Causal features: the value at bar t is computed from bars 0..t only, so no feature can see the future.

Every rolling statistic is trailing. The first `warmup` bars lack a full window and are excluded from
decisions (the environment starts after them) rather than filled.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml.data.bars import Panel
from rlops.errors import RlopsError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FeatureConfig:
    """Window lengths (in bars) of each feature family."""

    volatility_window: int = 20
    ma_windows: tuple[int, ...] = (10, 50)
    rsi_window: int = 14
    volume_window: int = 20

    def __post_init__(self) -> None:
        for name, value in (
            ("volatility_window", self.volatility_window),
            ("rsi_window", self.rsi_window),
            ("volume_window", self.volume_window),
            *(("ma_windows", w) for w in self.ma_windows),
        ):
            if value < 2:
                raise RlopsError(f"FeatureConfig.{name} must be >= 2 bars (got {value})")

    @property
    def names(self) -> tuple[str, ...]:
        return (
            "return",
            "log_return",
            f"volatility_{self.volatility_window}",
            *(f"ma_ratio_{w}" for w in self.ma_windows),
            f"rsi_{self.rsi_window}",
            f"volume_z_{self.volume_window}",
        )

    @property
    def warmup(self) -> int:
        """Bars before the first one where every feature is defined (returns need one bar of history)."""
        return max(self.volatility_window, *self.ma_windows, self.rsi_window, self.volume_window)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FeatureSet(NamedTuple):
    """Raw (unnormalised) features, (time, asset, feature); rows before `warmup` are NaN by construction."""

    values: FloatArray
    names: tuple[str, ...]
    warmup: int


def _rolling(frame: pd.DataFrame, window: int) -> Any:
    return frame.rolling(window=window, min_periods=window)


def compute_features(panel: Panel, config: FeatureConfig | None = None) -> FeatureSet:
    config = config or FeatureConfig()
    close = pd.DataFrame(panel.close)
    simple = close / close.shift(1) - 1.0
    log_ret = pd.DataFrame(np.log(panel.close)).diff()
    volatility = _rolling(log_ret, config.volatility_window).std(ddof=1)
    ma_ratios = [close / _rolling(close, w).mean() - 1.0 for w in config.ma_windows]
    change = close.diff()
    gains = _rolling(change.clip(lower=0.0), config.rsi_window).mean()
    losses = _rolling((-change).clip(lower=0.0), config.rsi_window).mean()
    total = gains + losses
    # A window with no movement at all is neutral, not undefined.
    rsi = (gains / total.where(total > 0)).where(total > 0, 0.5).where(total.notna())
    log_volume = pd.DataFrame(np.log1p(panel.volume))
    vol_roll = _rolling(log_volume, config.volume_window)
    vol_std = vol_roll.std(ddof=1)
    volume_z = ((log_volume - vol_roll.mean()) / vol_std.where(vol_std > 0)).where(vol_std > 0, 0.0)
    volume_z = volume_z.where(vol_std.notna())
    families = [simple, log_ret, volatility, *ma_ratios, rsi, volume_z]
    values = np.stack([f.to_numpy(dtype=np.float64) for f in families], axis=-1)
    values[: config.warmup] = np.nan
    if np.isinf(values).any():
        raise RlopsError("feature computation produced an infinite value; check the data for extreme prices")
    return FeatureSet(values=values, names=config.names, warmup=config.warmup)


@dataclass(frozen=True)
class Normalizer:
    """Per-feature mean and standard deviation, fitted on training rows only and saved with the run."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    names: tuple[str, ...]

    @classmethod
    def fit(cls, features: FeatureSet, rows: slice) -> Normalizer:
        sample = features.values[rows].reshape(-1, len(features.names))
        sample = sample[~np.isnan(sample).any(axis=1)]
        if len(sample) < 2:
            raise RlopsError("too few training rows after the feature warm-up to fit the normaliser")
        std = sample.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        return cls(tuple(float(x) for x in sample.mean(axis=0)), tuple(float(x) for x in std), features.names)

    def transform(self, values: FloatArray) -> FloatArray:
        scaled: FloatArray = (values - np.asarray(self.mean)) / np.asarray(self.std)
        return scaled

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> Normalizer:
        data = json.loads(path.read_text())
        return cls(tuple(data["mean"]), tuple(data["std"]), tuple(data["names"]))
