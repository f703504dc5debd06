"""A picklable recipe for environments: dataset, period, features and market settings in one value.

Worker processes (A3C, Ray trials) receive the spec and build their own environments from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from ml.data.features import FeatureConfig
from ml.data.resolve import resolve_dataset
from ml.data.splits import SplitConfig
from ml.envs.batched import BatchedTradingEnv
from ml.envs.config import EnvConfig
from ml.envs.market import MarketData, PreparedData, prepare
from ml.envs.trading_env import TradingEnv


@cache
def prepared(dataset: str, feature_config: FeatureConfig, split: SplitConfig | None = None) -> PreparedData:
    """Datasets are loaded and featurised once per process (and split), however many envs are built from them."""
    return prepare(resolve_dataset(dataset), feature_config, split or SplitConfig())


@dataclass(frozen=True)
class EnvSpec:
    dataset: str = "sp500"
    period: str = "train"  # train | validation | test | train+validation
    env: EnvConfig = field(default_factory=EnvConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    split: SplitConfig = field(default_factory=SplitConfig)

    def data(self) -> PreparedData:
        return prepared(self.dataset, self.features, self.split)

    def market(self) -> MarketData:
        return self.data().market(self.period, self.env.window)

    def make(self, record: bool = False) -> TradingEnv:
        return TradingEnv(self.market(), self.env, record=record)

    def make_batched(self, num_envs: int, record: bool = False) -> BatchedTradingEnv:
        return BatchedTradingEnv(self.market(), self.env, num_envs=num_envs, record=record)
