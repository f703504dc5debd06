"""Search spaces: plain data (YAML-friendly) per hyperparameter, checked, then turned into Ray Tune domains.

A parameter is a mapping ``{type: loguniform|uniform|int|choice, low, high | values, grid}``; a YAML list is
shorthand for ``choice``, ``null`` drops a default parameter (it then keeps the base config's value).
``grid`` lists the points grid search visits; parameters without one stay at their base value under grid
search. Every range end and choice is checked against the agent's own config validation up front, so a
space that would only fail inside a trial is rejected before the experiment exists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ml.agents.config import A3CConfig, PPOConfig, config_class, from_mapping
from rlops_core.errors import RlopsError

KINDS = ("loguniform", "uniform", "int", "choice")

DEFAULT_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "ppo": {
        "learning_rate": {"type": "loguniform", "low": 1e-5, "high": 1e-3, "grid": [1e-4, 1e-3]},
        "gamma": {"type": "uniform", "low": 0.9, "high": 0.999},
        "clip_param": {"type": "uniform", "low": 0.1, "high": 0.3},
        "entropy_coef": {"type": "uniform", "low": 0.0, "high": 0.02},
        "value_loss_coef": {"type": "uniform", "low": 0.25, "high": 1.0},
        "num_epochs": {"type": "choice", "values": [2, 4, 8]},
        "batch_size": {"type": "choice", "values": [64, 128, 256]},
    },
    "a3c": {
        "learning_rate": {"type": "loguniform", "low": 1e-4, "high": 3e-3, "grid": [3e-4, 3e-3]},
        "gamma": {"type": "uniform", "low": 0.9, "high": 0.999},
        "entropy_coef": {"type": "uniform", "low": 0.0, "high": 0.05},
        "value_loss_coef": {"type": "uniform", "low": 0.25, "high": 1.0},
        "max_grad_norm": {"type": "loguniform", "low": 0.5, "high": 50.0},
        "update_freq": {"type": "choice", "values": [5, 10, 20, 40]},
    },
}


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    values: tuple[Any, ...] = ()
    grid: tuple[Any, ...] = ()

    @property
    def is_continuous(self) -> bool:
        return self.kind in ("loguniform", "uniform")

    def probe_values(self) -> tuple[Any, ...]:
        """The values whose validity implies every sample's: range ends, choices and grid points."""
        ends: tuple[Any, ...] = (self.low, self.high) if self.low is not None else ()
        if self.kind == "int":
            ends = tuple(int(v) for v in ends)
        return ends + self.values + self.grid


def _fail(name: str, rule: str) -> RlopsError:
    return RlopsError(f"invalid search space entry {name!r}: {rule}")


def _number(name: str, spec: dict[str, Any], key: str) -> float:
    value = spec.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(name, f"{key} must be a finite number (got {value!r})")
    return float(value)


def parse_param(name: str, spec: Any) -> Param:
    if isinstance(spec, list):
        spec = {"type": "choice", "values": spec}
    if not isinstance(spec, dict):
        raise _fail(name, f"expected a mapping with a type, or a list of choices (got {spec!r})")
    unknown = sorted(set(spec) - {"type", "low", "high", "values", "grid"})
    if unknown:
        raise _fail(name, f"unknown key(s) {', '.join(unknown)}")
    kind = spec.get("type")
    if kind not in KINDS:
        raise _fail(name, f"type must be one of {', '.join(KINDS)} (got {kind!r})")
    grid = spec.get("grid", [])
    if not isinstance(grid, list) or ("grid" in spec and not grid):
        raise _fail(name, "grid must be a non-empty list")
    if kind == "choice":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise _fail(name, "choice needs a non-empty list of values")
        return Param(name, kind, values=tuple(values), grid=tuple(grid))
    low, high = _number(name, spec, "low"), _number(name, spec, "high")
    if not low < high:
        raise _fail(name, f"low must be < high (got {low} and {high})")
    if kind == "loguniform" and low <= 0:
        raise _fail(name, f"loguniform needs low > 0 (got {low})")
    if kind == "int" and not (low.is_integer() and high.is_integer()):
        raise _fail(name, f"int bounds must be integers (got {low} and {high})")
    return Param(name, kind, low, high, grid=tuple(grid))


@dataclass(frozen=True)
class SearchSpace:
    algo: str
    params: tuple[Param, ...]

    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def searched(self, search: str) -> tuple[Param, ...]:
        """The parameters a search algorithm varies (the others keep their base values)."""
        if search == "grid":
            return tuple(p for p in self.params if p.grid)
        if search == "bayesopt":
            # BayesOpt's Gaussian process models continuous ranges only.
            return tuple(p for p in self.params if p.is_continuous)
        return self.params

    def to_tune(self, search: str) -> dict[str, Any]:
        """Ray Tune's ``param_space`` for this search algorithm."""
        from ray import tune

        space: dict[str, Any] = {}
        for p in self.searched(search):
            if search == "grid":
                space[p.name] = tune.grid_search(list(p.grid))
            else:
                space[p.name] = domain(p)
        return space

    def mutations(self) -> dict[str, Any]:
        """PBT's ``hyperparam_mutations``: resample from the same domains."""
        return {p.name: list(p.values) if p.kind == "choice" else domain(p) for p in self.params}

    def clip(self, config: dict[str, Any]) -> dict[str, Any]:
        """Bring a PBT-perturbed configuration back inside the search ranges.

        PBT perturbs a continuous value by x0.8 or x1.2, which can leave its range (gamma 0.97 -> 1.16).
        """
        for p in self.params:
            if p.name in config and p.low is not None and p.high is not None and p.kind != "choice":
                value = min(max(config[p.name], p.low), p.high)
                config[p.name] = round(value) if p.kind == "int" else value
        return config


def domain(p: Param) -> Any:
    from ray import tune

    if p.kind == "choice":
        return tune.choice(list(p.values))
    assert p.low is not None and p.high is not None
    if p.kind == "loguniform":
        return tune.loguniform(p.low, p.high)
    if p.kind == "int":
        return tune.randint(int(p.low), int(p.high) + 1)
    return tune.uniform(p.low, p.high)


def read_space_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise RlopsError(f"search space file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise RlopsError(f"search space file {path} is not valid YAML: {exc}") from exc
    if data is None or data == {}:
        raise RlopsError(f"search space file {path} is empty")
    if not isinstance(data, dict):
        raise RlopsError(f"search space file {path} must hold a mapping of hyperparameter -> range")
    return data


def build_space(algo: str, overrides: dict[str, Any], base: dict[str, Any], search: str) -> SearchSpace:
    """Defaults merged with ``overrides``, every entry checked against the agent config; never empty."""
    cls = config_class(algo)
    merged: dict[str, Any] = dict(DEFAULT_SPACES[algo])
    merged.update(overrides)
    params = tuple(parse_param(name, spec) for name, spec in merged.items() if spec is not None)
    fields = set(cls.__dataclass_fields__)
    for p in params:
        if p.name not in fields:
            raise _fail(p.name, f"not a {cls.__name__} hyperparameter")
        for value in p.probe_values():
            try:
                agent_config(algo, base, {p.name: value})
            except RlopsError as exc:
                raise _fail(p.name, f"value {value!r} is not a valid setting: {exc}") from exc
    space = SearchSpace(algo, params)
    if not space.searched(search):
        what = {"grid": " with a grid list", "bayesopt": " with a continuous range"}.get(search, "")
        raise RlopsError(f"the search space is empty: no hyperparameter{what} to search with --search {search}")
    return space


def agent_config(algo: str, base: dict[str, Any], sampled: dict[str, Any]) -> PPOConfig | A3CConfig:
    """The agent config of one trial: base values under the sampled ones."""
    # Samplers hand back numpy scalars; the agent config accepts plain Python numbers only.
    values = {**base, **{k: v.item() if hasattr(v, "item") else v for k, v in sampled.items()}}
    if config_class(algo) is PPOConfig:
        return from_mapping(PPOConfig, values)
    return from_mapping(A3CConfig, values)
