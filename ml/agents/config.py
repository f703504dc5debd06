"""Typed, validated configurations of the two training entry points.

Each dataclass checks itself in ``__post_init__`` so that a bad value fails before an environment is built
or a process started, and computes its derived sizes in one place (properties). ``to_dict`` is what a run
saves in ``config.yaml`` and every checkpoint; ``from_mapping`` reads it back (or a user's YAML) strictly.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, get_args, get_origin

from ml.agents.networks import Activation
from ml.agents.schedules import LrSchedule
from rlops_core.errors import RlopsError

Algo = Literal["ppo", "a3c"]
ALGOS: tuple[str, ...] = get_args(Algo)
_DEVICE = re.compile(r"^(cpu|auto|cuda(:\d+)?)$")


def _check(ok: bool, name: str, rule: str, value: object) -> None:
    if not ok:
        raise RlopsError(f"invalid hyperparameter {name}={value!r}: {rule}")


@dataclass(frozen=True)
class CommonConfig:
    """Settings both algorithms share (network, seeding, device, bookkeeping)."""

    total_timesteps: int = 100_000
    """Environment steps to train for (summed over all environments / workers)."""
    learning_rate: float = 3e-4
    lr_schedule: LrSchedule = "linear"
    """``linear`` anneals the learning rate to zero over ``total_timesteps``."""
    gamma: float = 0.99
    entropy_coef: float = 0.0
    value_loss_coef: float = 0.5
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: Activation = "tanh"
    log_std_init: float = 0.0
    """Initial log standard deviation of the Gaussian head (continuous actions only)."""
    reward_scale: float = 1.0
    """Multiply rewards by this before learning (log returns of ~1e-2 per bar learn better scaled to ~1);
    reported returns stay unscaled."""
    normalize_obs: bool = True
    """Standardize observations with running statistics, which the checkpoint keeps for inference."""
    seed: int = 0
    device: str = "cpu"
    """``cpu`` (default), ``cuda``/``cuda:N`` (an error when no GPU is present) or ``auto``."""
    torch_threads: int = 1
    """Intra-op threads; one is fastest for these small networks and keeps results independent of the host."""
    checkpoint_interval: int = 0
    """Save a checkpoint every this many environment steps (0: only the final one)."""
    eval_episodes: int = 10
    """Deterministic episodes evaluated at the end of a run (and by A3C's stop-on-target check)."""

    def __post_init__(self) -> None:
        _check(self.total_timesteps > 0, "total_timesteps", "must be > 0", self.total_timesteps)
        _check(self.learning_rate > 0, "learning_rate", "must be > 0", self.learning_rate)
        _check(
            self.lr_schedule in get_args(LrSchedule),
            "lr_schedule",
            f"one of {get_args(LrSchedule)}",
            self.lr_schedule,
        )
        _check(0.0 <= self.gamma <= 1.0, "gamma", "must be in [0, 1]", self.gamma)
        _check(self.entropy_coef >= 0, "entropy_coef", "must be >= 0", self.entropy_coef)
        _check(self.value_loss_coef >= 0, "value_loss_coef", "must be >= 0", self.value_loss_coef)
        _check(self.reward_scale > 0, "reward_scale", "must be > 0", self.reward_scale)
        _check(self.max_grad_norm > 0, "max_grad_norm", "must be > 0", self.max_grad_norm)
        _check(all(h > 0 for h in self.hidden_sizes), "hidden_sizes", "sizes must be > 0", self.hidden_sizes)
        _check(
            self.activation in get_args(Activation),
            "activation",
            f"one of {get_args(Activation)}",
            self.activation,
        )
        _check(self.seed >= 0, "seed", "must be >= 0", self.seed)
        _check(bool(_DEVICE.match(self.device)), "device", "cpu, cuda, cuda:N or auto", self.device)
        _check(self.torch_threads >= 1, "torch_threads", "must be >= 1", self.torch_threads)
        _check(self.checkpoint_interval >= 0, "checkpoint_interval", "must be >= 0", self.checkpoint_interval)
        _check(self.eval_episodes >= 0, "eval_episodes", "must be >= 0", self.eval_episodes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}


@dataclass(frozen=True)
class PPOConfig(CommonConfig):
    """Proximal Policy Optimization on a batched environment (clipped surrogate, GAE)."""

    num_envs: int = 8
    rollout_steps: int = 128
    """Steps per environment between updates; one rollout is ``num_envs * rollout_steps`` transitions."""
    batch_size: int = 256
    """Minibatch size; must divide the rollout."""
    num_epochs: int = 4
    gae_lambda: float = 0.95
    clip_param: float = 0.2
    clip_value_loss: bool = False
    """Clip the value update to ``clip_param`` around the old value, as in the original PPO code."""
    normalize_advantages: bool = True
    """Standardize advantages per minibatch."""
    target_kl: float | None = None
    """Stop an update's epochs early once the approximate KL to the rollout policy passes this."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.num_envs >= 1, "num_envs", "must be >= 1", self.num_envs)
        _check(self.rollout_steps >= 1, "rollout_steps", "must be >= 1", self.rollout_steps)
        _check(self.num_epochs >= 1, "num_epochs", "must be >= 1", self.num_epochs)
        _check(0.0 <= self.gae_lambda <= 1.0, "gae_lambda", "must be in [0, 1]", self.gae_lambda)
        _check(self.clip_param > 0, "clip_param", "must be > 0", self.clip_param)
        _check(self.target_kl is None or self.target_kl > 0, "target_kl", "must be > 0 or null", self.target_kl)
        min_batch = 2 if self.normalize_advantages else 1
        _check(self.batch_size >= min_batch, "batch_size", f"must be >= {min_batch}", self.batch_size)
        _check(
            self.batch_size <= self.rollout_size,
            "batch_size",
            f"larger than the rollout (num_envs * rollout_steps = {self.rollout_size})",
            self.batch_size,
        )
        _check(
            self.rollout_size % self.batch_size == 0,
            "batch_size",
            f"must divide the rollout (num_envs * rollout_steps = {self.rollout_size})",
            self.batch_size,
        )

    @property
    def rollout_size(self) -> int:
        return self.num_envs * self.rollout_steps

    @property
    def num_minibatches(self) -> int:
        return self.rollout_size // self.batch_size

    @property
    def num_iterations(self) -> int:
        """Rollout-and-update cycles; the budget is rounded up to whole rollouts."""
        return -(-self.total_timesteps // self.rollout_size)


@dataclass(frozen=True)
class A3CConfig(CommonConfig):
    """Asynchronous advantage actor-critic: workers apply n-step gradients to a shared model (Hogwild)."""

    learning_rate: float = 1e-3
    lr_schedule: LrSchedule = "constant"
    entropy_coef: float = 0.01
    max_grad_norm: float = 40.0
    normalize_obs: bool = False
    num_workers: int = 2
    update_freq: int = 20
    """Steps a worker collects (fewer when its episode ends) before computing n-step returns and updating."""
    eval_interval: int = 10_000
    """Evaluate the shared model every this many global steps (0: never during training)."""
    target_return: float | None = None
    """Stop early once both the deterministic evaluation and the mean of the last 100 training episodes
    (the stochastic policy actually being run) reach this return; checked every ``eval_interval`` steps
    once the training mean alone has reached it."""
    worker_timeout_s: float = 120.0
    """Fail the run when no worker reports anything for this long (a hung worker must not hang the run)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.num_workers >= 1, "num_workers", "must be >= 1", self.num_workers)
        _check(self.update_freq >= 1, "update_freq", "must be >= 1", self.update_freq)
        _check(self.eval_interval >= 0, "eval_interval", "must be >= 0", self.eval_interval)
        _check(self.worker_timeout_s > 0, "worker_timeout_s", "must be > 0", self.worker_timeout_s)
        _check(
            self.target_return is None or (self.eval_interval > 0 and self.eval_episodes > 0),
            "target_return",
            "needs eval_interval > 0 and eval_episodes > 0",
            self.target_return,
        )


AgentConfig = PPOConfig | A3CConfig
ConfigT = TypeVar("ConfigT", PPOConfig, A3CConfig)
CONFIG_CLASSES: dict[str, type[PPOConfig] | type[A3CConfig]] = {"ppo": PPOConfig, "a3c": A3CConfig}


def config_class(algo: str) -> type[PPOConfig] | type[A3CConfig]:
    if algo not in CONFIG_CLASSES:
        raise RlopsError(f"unknown algorithm {algo!r}: choose one of {', '.join(ALGOS)}")
    return CONFIG_CLASSES[algo]


def _coerce(name: str, hint: Any, value: Any) -> Any:
    origin = get_origin(hint)
    args = get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _coerce(name, next(a for a in args if a is not type(None)), value)
    if origin is Literal:
        _check(value in args, name, f"one of {args}", value)
        return value
    if origin is tuple:
        _check(isinstance(value, list | tuple), name, "must be a list", value)
        return tuple(_coerce(name, args[0], item) for item in value)
    if hint is bool:
        _check(isinstance(value, bool), name, "must be true or false", value)
        return value
    if hint is int:
        _check(isinstance(value, int) and not isinstance(value, bool), name, "must be an integer", value)
        return value
    if hint is float:
        _check(isinstance(value, int | float) and not isinstance(value, bool), name, "must be a number", value)
        return float(value)
    if hint is str:
        _check(isinstance(value, str), name, "must be a string", value)
        return value
    raise TypeError(f"config field {name} has an unsupported type {hint}")


def from_mapping(cls: type[ConfigT], data: dict[str, Any], **overrides: Any) -> ConfigT:
    """Build a config from plain data (a YAML file, a checkpoint); unknown or mistyped keys are errors."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise RlopsError(f"unknown {cls.__name__} key(s): {', '.join(unknown)} (valid: {', '.join(sorted(names))})")
    values = {key: _coerce(key, hints[key], value) for key, value in data.items()}
    values.update(overrides)
    return cls(**values)
