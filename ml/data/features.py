"""Causal features: the value at bar t is computed from bars 0..t only, so no feature can see the future.

Every rolling statistic is trailing. The first `warmup` bars lack a full window and are excluded from
decisions (the environment starts after them) rather than filled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from ml.data.bars import Panel
from rlops_core.errors import RlopsError

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

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> FeatureConfig:
        """Settings read back from JSON or YAML (where `ma_windows` arrives as a list); unknown keys refused."""
        settings = dict(values or {})
        unknown = sorted(set(settings) - {f.name for f in fields(cls)})
        if unknown:
            raise RlopsError(
                f"unknown feature setting(s) {', '.join(unknown)}; known: {', '.join(f.name for f in fields(cls))}"
            )
        if "ma_windows" in settings:
            settings["ma_windows"] = tuple(settings["ma_windows"])
        return cls(**settings)


class FeatureSet(NamedTuple):
    """Raw (unnormalised) features, (time, asset, feature); rows before `warmup` are NaN by construction."""

    values: FloatArray
    names: tuple[str, ...]
    warmup: int


def _window_mean(values: FloatArray, window: int) -> FloatArray:
    """Trailing mean over ``window`` rows, NaN where the window is incomplete or holds a NaN.

    Summed in a fixed order from the window's own rows only, so the value at t is bit for bit the same
    whatever history precedes the window. (pandas' rolling sums carry a running total through the whole
    history, so its last bits depend on where the series starts.) The inference service builds observations
    from a client's last bars and must match the environment's, built from the full history, exactly.
    """
    out = np.full(values.shape, np.nan)
    count = len(values) - window + 1
    if count < 1:
        return out
    total = values[:count].copy()
    for k in range(1, window):
        total += values[k : k + count]
    out[window - 1 :] = total / window
    return out


def _window_std(values: FloatArray, window: int) -> FloatArray:
    """Trailing sample standard deviation (ddof=1), two-pass over each window like :func:`_window_mean`."""
    out = np.full(values.shape, np.nan)
    count = len(values) - window + 1
    if count < 1:
        return out
    mean = _window_mean(values, window)[window - 1 :]
    squares = np.zeros_like(mean)
    for k in range(window):
        deviation = values[k : k + count] - mean
        squares += deviation * deviation
    out[window - 1 :] = np.sqrt(squares / (window - 1))
    return out


def _lagged_difference(values: FloatArray) -> FloatArray:
    out = np.full(values.shape, np.nan)
    out[1:] = values[1:] - values[:-1]
    return out


def compute_features(panel: Panel, config: FeatureConfig | None = None) -> FeatureSet:
    """Features of every bar; the row of bar t depends on bars t - warmup .. t alone (see :func:`_window_mean`)."""
    config = config or FeatureConfig()
    close = panel.close
    previous = np.full(close.shape, np.nan)
    previous[1:] = close[:-1]
    simple = close / previous - 1.0
    log_ret = _lagged_difference(np.log(close))
    volatility = _window_std(log_ret, config.volatility_window)
    ma_ratios = [close / _window_mean(close, w) - 1.0 for w in config.ma_windows]
    change = _lagged_difference(close)
    gains = _window_mean(np.maximum(change, 0.0), config.rsi_window)  # NaN stays NaN
    losses = _window_mean(np.maximum(-change, 0.0), config.rsi_window)
    total = gains + losses
    with np.errstate(invalid="ignore", divide="ignore"):
        # A window with no movement at all is neutral, not undefined.
        rsi = np.where(total > 0, gains / total, 0.5)
        log_volume = np.log1p(panel.volume)
        vol_mean = _window_mean(log_volume, config.volume_window)
        vol_std = _window_std(log_volume, config.volume_window)
        volume_z = np.where(vol_std > 0, (log_volume - vol_mean) / vol_std, 0.0)
    rsi[np.isnan(total)] = np.nan
    volume_z[np.isnan(vol_std)] = np.nan
    families = [simple, log_ret, volatility, *ma_ratios, rsi, volume_z]
    values = np.stack([np.asarray(f, dtype=np.float64) for f in families], axis=-1)
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
