"""Picklable recipes for the environments agents train on.

A source builds the batched env for PPO and single envs for A3C workers and evaluation. Sources are frozen
dataclasses so that they cross process boundaries (A3C spawns its workers) and describe themselves as plain
data for ``config.yaml`` and checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import gymnasium as gym

from ml.agents.sync_vec_env import SameStepSyncVecEnv
from ml.agents.vec_env import VecEnv
from rlops_core.errors import RlopsError

if TYPE_CHECKING:
    from ml.envs import EnvConfig, MarketData

GYM_ALIASES = {"cartpole": "CartPole-v1", "pendulum": "Pendulum-v1"}


class EnvSource(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def fingerprint(self) -> str | None:
        """Dataset fingerprint recorded with the run (None for simulated control tasks)."""
        ...

    def make_env(self) -> gym.Env[Any, Any]:
        """One environment (A3C workers, evaluation)."""
        ...

    def make_vec_env(self, num_envs: int) -> VecEnv:
        """``num_envs`` environments stepped together, SAME_STEP autoreset."""
        ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class GymEnvFactory:
    """Picklable zero-argument constructor of a registered gymnasium environment."""

    env_id: str

    def __call__(self) -> gym.Env[Any, Any]:
        return gym.make(self.env_id)


@dataclass(frozen=True)
class GymSource:
    """A registered gymnasium environment (CartPole-v1, Pendulum-v1, ...) for tests and smoke runs."""

    env_id: str

    @property
    def name(self) -> str:
        return self.env_id

    @property
    def fingerprint(self) -> str | None:
        return None

    def make_env(self) -> gym.Env[Any, Any]:
        return GymEnvFactory(self.env_id)()

    def make_vec_env(self, num_envs: int) -> VecEnv:
        env: VecEnv = SameStepSyncVecEnv([GymEnvFactory(self.env_id) for _ in range(num_envs)])
        return env

    def describe(self) -> dict[str, Any]:
        return {"kind": "gym", "env_id": self.env_id}


def gym_source(name: str) -> GymSource:
    return GymSource(GYM_ALIASES.get(name.lower(), name))


@dataclass(frozen=True)
class FactorySource:
    """Any environment built by a zero-argument constructor (an env class, or an instance with ``__call__``);
    A3C's spawned workers unpickle it, so the constructor must be importable at module level."""

    factory: Any
    label: str = "env"

    @property
    def name(self) -> str:
        return self.label

    @property
    def fingerprint(self) -> str | None:
        return None

    def make_env(self) -> gym.Env[Any, Any]:
        env: gym.Env[Any, Any] = self.factory()
        return env

    def make_vec_env(self, num_envs: int) -> VecEnv:
        env: VecEnv = SameStepSyncVecEnv([self.factory for _ in range(num_envs)])
        return env

    def describe(self) -> dict[str, Any]:
        return {"kind": "factory", "name": self.label}


@dataclass(frozen=True)
class MarketSource:
    """The trading environment (``ml.envs``) on an already prepared market.

    Carrying the prepared ``MarketData`` (a few arrays) rather than a dataset name means A3C workers build
    their environments without loading and featurizing the data again.
    """

    market: MarketData
    env_config: EnvConfig
    label: str
    description: dict[str, Any]
    contract: dict[str, Any] | None = None
    """The observation contract (``ml.envs.contract``) that checkpoints of this source carry."""

    @property
    def name(self) -> str:
        return self.label

    @property
    def fingerprint(self) -> str | None:
        return self.market.fingerprint

    def make_env(self) -> gym.Env[Any, Any]:
        from ml.envs import TradingEnv

        return TradingEnv(self.market, self.env_config, record=False)

    def make_vec_env(self, num_envs: int) -> VecEnv:
        from ml.envs import BatchedTradingEnv

        env: VecEnv = BatchedTradingEnv(self.market, self.env_config, num_envs=num_envs)
        return env

    def describe(self) -> dict[str, Any]:
        return self.description


def trading_source(
    dataset: str,
    period: str = "train",
    env: dict[str, Any] | None = None,
    features: dict[str, Any] | None = None,
    split: dict[str, Any] | None = None,
) -> MarketSource:
    """The trading env on one period (train / validation / test) of a dataset, cut by `split` (a `SplitConfig`
    mapping; default dates by fractions); the split travels in the description, so checkpoints record it."""
    from ml.data.features import FeatureConfig
    from ml.data.splits import SplitConfig
    from ml.envs import EnvConfig
    from ml.envs import EnvSpec as TradingEnvSpec
    from ml.envs.contract import observation_contract

    spec = TradingEnvSpec(
        dataset=dataset,
        period=period,
        env=EnvConfig.from_dict(env or {}),
        features=FeatureConfig.from_dict(features),
        split=SplitConfig.from_dict(split),
    )
    description = {
        "kind": "trading",
        "dataset": dataset,
        "period": period,
        "env": spec.env.to_dict(),
        "features": spec.features.to_dict(),
        "split": spec.split.to_dict(),
    }
    data = spec.data()
    contract = observation_contract(data, spec.env, data.split.part(period), dataset).to_dict()
    return MarketSource(spec.market(), spec.env, f"trading:{dataset}:{period}", description, contract)


def contract_of(source: EnvSource) -> dict[str, Any] | None:
    """The observation contract a checkpoint of ``source`` records (sources without market data have none)."""
    contract: dict[str, Any] | None = getattr(source, "contract", None)
    return contract


def source_from_description(description: dict[str, Any]) -> EnvSource:
    """Rebuild the source a checkpoint or ``config.yaml`` recorded."""
    kind = description.get("kind")
    if kind == "gym":
        return GymSource(str(description["env_id"]))
    if kind == "trading":
        from ml.data.splits import LEGACY_SPLIT

        return trading_source(
            str(description["dataset"]),
            str(description["period"]),
            dict(description["env"]),
            dict(description.get("features", {})),
            dict(description.get("split") or LEGACY_SPLIT.to_dict()),
        )
    raise RlopsError(f"cannot rebuild an environment of kind {kind!r} (recorded: {description})")
