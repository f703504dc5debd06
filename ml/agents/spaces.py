"""What an agent needs to know about an environment's spaces, as plain data that a checkpoint can hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from rlops_core.errors import RlopsError

ActionKind = Literal["discrete", "multi_discrete", "continuous"]


@dataclass(frozen=True)
class SpaceSpec:
    """Observation size and action space of an environment.

    Kept as primitives (not gymnasium spaces) so that a checkpoint loads without unpickling arbitrary objects
    and a policy can be rebuilt without the environment.
    """

    name: str
    obs_dim: int
    action_kind: ActionKind
    num_actions: int = 0  # discrete only
    action_dim: int = 0  # continuous: size of the action vector; multi-discrete: number of sub-actions
    action_nvec: tuple[int, ...] = ()  # multi-discrete only: choices per sub-action (one per asset)
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()

    @property
    def is_discrete(self) -> bool:
        return self.action_kind == "discrete"

    @property
    def is_continuous(self) -> bool:
        return self.action_kind == "continuous"

    @property
    def head_size(self) -> int:
        """Output width of the policy head: logits (all sub-actions' together) or Gaussian means."""
        if self.action_kind == "multi_discrete":
            return sum(self.action_nvec)
        return self.num_actions if self.is_discrete else self.action_dim

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "obs_dim": self.obs_dim,
            "action_kind": self.action_kind,
            "num_actions": self.num_actions,
            "action_dim": self.action_dim,
            "action_nvec": list(self.action_nvec),
            "action_low": list(self.action_low),
            "action_high": list(self.action_high),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpaceSpec:
        return cls(
            name=str(data["name"]),
            obs_dim=int(data["obs_dim"]),
            action_kind=data["action_kind"],
            num_actions=int(data["num_actions"]),
            action_dim=int(data["action_dim"]),
            action_nvec=tuple(int(n) for n in data.get("action_nvec", ())),
            action_low=tuple(float(x) for x in data["action_low"]),
            action_high=tuple(float(x) for x in data["action_high"]),
        )

    @classmethod
    def from_spaces(cls, name: str, observation_space: gym.Space[Any], action_space: gym.Space[Any]) -> SpaceSpec:
        if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
            raise RlopsError(f"environment {name}: agents need a 1-D Box observation space, got {observation_space}")
        obs_dim = int(observation_space.shape[0])
        if isinstance(action_space, gym.spaces.Discrete):
            if int(action_space.start) != 0:
                raise RlopsError(f"environment {name}: discrete actions must start at 0, got {action_space}")
            return cls(name=name, obs_dim=obs_dim, action_kind="discrete", num_actions=int(action_space.n))
        if isinstance(action_space, gym.spaces.MultiDiscrete) and len(action_space.nvec.shape) == 1:
            if np.any(action_space.start != 0):
                raise RlopsError(f"environment {name}: discrete actions must start at 0, got {action_space}")
            nvec = tuple(int(n) for n in action_space.nvec)
            return cls(name=name, obs_dim=obs_dim, action_kind="multi_discrete", action_dim=len(nvec), action_nvec=nvec)
        if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
            low = np.asarray(action_space.low, dtype=np.float64)
            high = np.asarray(action_space.high, dtype=np.float64)
            if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
                raise RlopsError(f"environment {name}: continuous actions need finite bounds, got {action_space}")
            return cls(
                name=name,
                obs_dim=obs_dim,
                action_kind="continuous",
                action_dim=int(action_space.shape[0]),
                action_low=tuple(float(x) for x in low),
                action_high=tuple(float(x) for x in high),
            )
        raise RlopsError(
            f"environment {name}: unsupported action space {action_space} (use Discrete, 1-D MultiDiscrete or 1-D Box)"
        )
