"""The observation contract: everything needed to rebuild a trading observation outside the training process.

A checkpoint carries it (as plain data) so that a client with raw OHLCV bars and an account can get the very
observation the environment would have built: which features in which order, the window, the symbols, the
normaliser fitted on the training split, the account part, what an action means, the bar frequency and the
data it came from. :func:`ml.envs.observation.observe_bars` is the one function that applies it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ml.data.features import FeatureConfig, Normalizer
from ml.data.splits import Span
from ml.envs.config import EnvConfig
from ml.envs.market import PreparedData
from rlops_core.errors import RlopsError

CONTRACT_VERSION = 1
EXECUTION = (
    "decide at the close of bar t from bars up to t; orders fill at the open of bar t+1 and the account is "
    "marked at the close of t+1"
)


@dataclass(frozen=True)
class ObservationContract:
    """How observations of one trained policy are built; ``obs_dim`` must equal the network's input size."""

    symbols: tuple[str, ...]
    feature_names: tuple[str, ...]
    features: dict[str, Any]
    """The FeatureConfig's settings (windows of each family)."""
    window: int
    warmup: int
    normalizer_mean: tuple[float, ...]
    normalizer_std: tuple[float, ...]
    normalizer_fitted_on: tuple[str, str]
    """First and last bar (ISO timestamps) of the training split the normaliser saw."""
    account_features: tuple[str, ...]
    obs_dim: int
    layout: str
    env: dict[str, Any]
    """The EnvConfig the policy trained with: action mode, levels or weight bounds, costs, limits."""
    action_meaning: str
    bar_frequency: str
    periods_per_year: float
    dataset: str
    dataset_fingerprint: str
    training_period: tuple[str, str]
    execution: str = EXECUTION
    version: int = CONTRACT_VERSION

    @property
    def bars_needed(self) -> int:
        """Bars per asset for one observation: the features' warm-up, then the window."""
        return self.warmup + self.window

    def feature_config(self) -> FeatureConfig:
        return FeatureConfig.from_dict(self.features)

    def env_config(self) -> EnvConfig:
        return EnvConfig.from_dict(self.env)

    def normalizer(self) -> Normalizer:
        return Normalizer(self.normalizer_mean, self.normalizer_std, self.feature_names)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # Lists, not tuples: the checkpoint is read with torch.load(weights_only=True) and served as JSON.
        return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObservationContract:
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RlopsError(f"observation contract: unknown field(s) {', '.join(unknown)}")
        if data.get("version") != CONTRACT_VERSION:
            raise RlopsError(
                f"observation contract version {data.get('version')!r}; this rlops reads version {CONTRACT_VERSION}"
            )
        missing = sorted(known - set(data) - {"execution"})
        if missing:
            raise RlopsError(f"observation contract: missing field(s) {', '.join(missing)}")
        values: dict[str, Any] = {
            key: tuple(value) if isinstance(value, list) else value for key, value in data.items()
        }
        return cls(**values)


def _action_meaning(config: EnvConfig, num_assets: int) -> str:
    per = "one per asset, in the order of symbols" if num_assets > 1 else "for the one asset"
    if config.action_mode == "discrete":
        levels = ", ".join(f"{i} -> {level:g}" for i, level in enumerate(config.levels))
        return f"discrete target weights ({per}): index {levels} (fraction of equity; negative is short)"
    return f"continuous target weights in [{config.weight_low:g}, 1] ({per}), as fractions of equity"


def observation_contract(data: PreparedData, config: EnvConfig, span: Span, dataset: str) -> ObservationContract:
    """The contract of observations built from ``data`` with ``config``, for a policy trained on ``span``."""
    panel = data.panel
    stamps = panel.timestamps
    symbols = panel.symbols
    train = data.split.train
    fitted_from = max(train.start, data.feature_config.warmup)
    names = data.feature_config.names
    account = (*(f"weight:{symbol}" for symbol in symbols), "cash_weight", "unrealised_pnl")
    return ObservationContract(
        symbols=symbols,
        feature_names=names,
        features=data.feature_config.to_dict(),
        window=config.window,
        warmup=data.feature_config.warmup,
        normalizer_mean=data.normalizer.mean,
        normalizer_std=data.normalizer.std,
        normalizer_fitted_on=(stamps[fitted_from].isoformat(), stamps[train.stop - 1].isoformat()),
        account_features=account,
        obs_dim=config.window * len(symbols) * len(names) + len(account),
        layout=(
            "window bars oldest first; within a bar, assets in the order of symbols, each with its features in "
            "the order of feature_names, (raw - mean) / std clipped to [-10, 10]; then account_features: each "
            "asset's position value, the cash and the unrealised PnL, as fractions of equity at the bar's close"
        ),
        env=config.to_dict(),
        action_meaning=_action_meaning(config, len(symbols)),
        bar_frequency=data.bars.bar_spacing.isoformat(),
        periods_per_year=data.bars.periods_per_year,
        dataset=dataset,
        dataset_fingerprint=data.fingerprint,
        training_period=(stamps[span.start].isoformat(), stamps[span.stop - 1].isoformat()),
    )
