"""The market an environment trades: aligned prices, normalised causal features, and the bars it may use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml.data.bars import Bars, Panel
from ml.data.features import FeatureConfig, Normalizer, compute_features
from ml.data.fingerprint import fingerprint
from ml.data.splits import Span, Split, SplitConfig, resolve_checked
from ml.envs.config import EnvConfig
from rlops_core.errors import RlopsError

FloatArray = npt.NDArray[np.float64]


class MarketData(NamedTuple):
    """Everything the kernel reads. Decisions happen at bars [first_decision, last_bar), fills up to last_bar."""

    timestamps: pd.DatetimeIndex
    symbols: tuple[str, ...]
    open: FloatArray  # (T, A)
    close: FloatArray  # (T, A)
    volume: FloatArray  # (T, A)
    features: FloatArray  # (T, A * F), normalised; NaN only before the feature warm-up
    feature_names: tuple[str, ...]
    first_decision: int
    last_bar: int
    periods_per_year: float
    fingerprint: str

    @property
    def num_assets(self) -> int:
        return len(self.symbols)

    @property
    def decision_bars(self) -> int:
        return self.last_bar - self.first_decision


@dataclass(frozen=True)
class PreparedData:
    """A dataset with its features, split and training-fitted normaliser: shared by every period's market."""

    bars: Bars
    panel: Panel
    features: FloatArray  # raw, (T, A, F)
    feature_config: FeatureConfig
    split: Split
    normalizer: Normalizer
    fingerprint: str

    def market(self, period: str | Span, window: int) -> MarketData:
        span = self.split.part(period) if isinstance(period, str) else period
        return build_market(self, span, window)


def prepare(
    bars: Bars, feature_config: FeatureConfig | None = None, split: Split | SplitConfig | None = None
) -> PreparedData:
    """Features for the whole history (each causal), the split (a `SplitConfig` is resolved on this dataset's
    dates, its embargo defaulting to the feature warm-up), and a normaliser fitted on train rows only."""
    feature_config = feature_config or FeatureConfig()
    panel = bars.panel()
    feature_set = compute_features(panel, feature_config)
    if not isinstance(split, Split):
        split = resolve_checked(
            split or SplitConfig(), panel.timestamps, feature_config.warmup, bars.name, EnvConfig().window
        )
    train = split.train
    normalizer = Normalizer.fit(feature_set, slice(max(train.start, feature_set.warmup), train.stop))
    return PreparedData(
        bars=bars,
        panel=panel,
        features=feature_set.values,
        feature_config=feature_config,
        split=split,
        normalizer=normalizer,
        fingerprint=fingerprint(bars.frame, {"features": feature_config.to_dict()}),
    )


def build_market(data: PreparedData, span: Span, window: int) -> MarketData:
    panel = data.panel
    num_bars = panel.num_bars
    if span.stop > num_bars:
        raise RlopsError(f"period [{span.start}, {span.stop}) runs past the data's {num_bars} bars")
    warmup = data.feature_config.warmup
    first = max(span.start, warmup + window - 1)
    last = span.stop - 1
    if last - first < 1:
        raise RlopsError(
            f"period of {len(span)} bars ({panel.timestamps[span.start].date()} to {panel.timestamps[last].date()}) "
            f"is too short for a {window}-bar window after a {warmup}-bar feature warm-up: it needs at least two "
            "bars from the first decision"
        )
    # The arrays end with the period: a market for the train or validation split (what tuning trials receive)
    # holds no later bar at all, so no index can reach the test period. Earlier bars stay for the window.
    end = span.stop
    flat = flat_features(data.normalizer, data.features[:end])
    return MarketData(
        timestamps=panel.timestamps[:end],
        symbols=panel.symbols,
        open=np.ascontiguousarray(panel.open[:end]),
        close=np.ascontiguousarray(panel.close[:end]),
        volume=np.ascontiguousarray(panel.volume[:end]),
        features=flat,
        feature_names=data.feature_config.names,
        first_decision=first,
        last_bar=last,
        periods_per_year=data.bars.periods_per_year,
        fingerprint=data.fingerprint,
    )


def flat_features(normalizer: Normalizer, raw: FloatArray) -> FloatArray:
    """Raw (T, A, F) features normalised and laid out as the kernel reads them: (T, A * F), asset-major."""
    return np.ascontiguousarray(normalizer.transform(raw).reshape(len(raw), -1))


def observation_size(market: MarketData, config: EnvConfig) -> int:
    return int(config.window * market.features.shape[1] + market.num_assets + 2)


def check_fits(market: MarketData, config: EnvConfig) -> None:
    if config.episode_length is not None and config.episode_length > market.decision_bars:
        raise RlopsError(
            f"EnvConfig.episode_length {config.episode_length} is longer than the {market.decision_bars} decision "
            f"bars available in this period"
        )


def draw_episode(market: MarketData, config: EnvConfig, rng: np.random.Generator) -> tuple[int, int]:
    """(start bar, end bar) of the next episode: the whole period, or a random stretch of episode_length."""
    if config.episode_length is None:
        return market.first_decision, market.last_bar
    latest = market.last_bar - config.episode_length
    start = int(rng.integers(market.first_decision, latest + 1)) if config.random_start else market.first_decision
    return start, start + config.episode_length
