"""The pipeline's one configuration: typed, validated, read from YAML with unknown keys refused."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import yaml

from ml.data import storage
from ml.data.splits import SplitConfig
from rlops_core.errors import RlopsError

ALGOS = ("ppo", "a3c")
BASELINES = ("buy_and_hold", "flat", "ma_crossover", "random", "equal_weight")


@dataclass(frozen=True)
class WalkForwardConfig:
    """Walk-forward evaluation of the test split: it is cut into `folds` consecutive folds and, for each one,
    every algorithm is retrained (with its tuned configuration, or tuned again on the fold's own train and
    validation bars when `tune` is set) on the bars before the fold less the split's embargo, then scored on it.
    `train_bars` keeps only that many bars before each fold (a rolling window); None keeps them all (expanding)."""

    folds: int = 0  # 0: off
    train_bars: int | None = None
    tune: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 0:
            raise RlopsError(f"walk_forward.folds (--walk-forward): must be a whole number >= 0 (got {self.folds!r})")
        if self.train_bars is not None and (
            isinstance(self.train_bars, bool) or not isinstance(self.train_bars, int) or self.train_bars < 1
        ):
            raise RlopsError(f"walk_forward.train_bars: must be a whole number of bars >= 1 (got {self.train_bars!r})")
        if not isinstance(self.tune, bool):
            raise RlopsError(f"walk_forward.tune: must be true or false (got {self.tune!r})")

    @classmethod
    def from_dict(cls, data: Any, where: str = "walk_forward") -> WalkForwardConfig:
        if not isinstance(data, dict):
            raise RlopsError(f"{where}: must be a mapping such as {{folds: 3}} (got {data!r})")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RlopsError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)


@dataclass(frozen=True)
class PipelineConfig:
    """Defaults are the `make demo` budget: both agents tuned and retrained in a few minutes on 2 cores."""

    dataset: str = "sp500"
    out: str = "runs/pipeline"
    algos: tuple[str, ...] = ALGOS
    search: str = "bayes"
    scheduler: str = "asha"
    samples: int = 4
    iterations: int = 4  # tuning reports per trial
    steps_per_iteration: int = 4096
    # Final fit of the best config on train + validation. None: the tuned budget (iterations x steps_per_iteration)
    # x (train + validation bars) / (train bars), the same passes over the data as tuning (ml.pipeline.budget).
    retrain_timesteps: int | None = None
    metric: str = "sharpe"  # tuning objective, on the validation split
    baselines: tuple[str, ...] = ("buy_and_hold", "flat", "ma_crossover")
    env: dict[str, Any] = field(default_factory=dict)  # EnvConfig overrides, for training and backtests alike
    # Train / validation / test by dates or fractions, and the embargo between them (default: the feature warm-up).
    split: SplitConfig = field(default_factory=SplitConfig)
    walk_forward: WalkForwardConfig = field(default_factory=WalkForwardConfig)
    seed: int = 0
    smoke: bool = False  # the agents' smoke budgets: checks the whole chain in about a minute
    # "auto" inside a Ray job (the cluster workflow's tune step): join that job's Ray cluster instead of
    # starting a local one. Where tuning runs does not change its result, so no stage's key depends on it.
    ray_address: str | None = None
    # The memory bank folder the record stage appends its entry to. None (the default) keeps the entry in the run's
    # output only (record/memory-entry.md, for `rlops memory add --from`), so that a newcomer's `make demo` never
    # dirties the project's own history and a cluster pod, which has no checkout, needs no setting.
    memory_bank: str | None = None

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise RlopsError(f"pipeline config: {message}")

        need(bool(self.algos), "algos must name at least one of ppo, a3c")
        unknown = [a for a in self.algos if a not in ALGOS]
        need(not unknown, f"unknown algorithm(s) {', '.join(unknown)}; choose from {', '.join(ALGOS)}")
        unknown = [b for b in self.baselines if b not in BASELINES]
        need(not unknown, f"unknown baseline(s) {', '.join(unknown)}; choose from {', '.join(BASELINES)}")
        need(self.samples >= 1, f"samples must be >= 1 (got {self.samples})")
        need(self.iterations >= 1, f"iterations must be >= 1 (got {self.iterations})")
        need(self.steps_per_iteration >= 1, f"steps_per_iteration must be >= 1 (got {self.steps_per_iteration})")
        need(
            self.retrain_timesteps is None or self.retrain_timesteps >= 1,
            f"retrain_timesteps must be >= 1, or null to derive it (got {self.retrain_timesteps})",
        )
        need(bool(self.out), "out must name a folder or an s3:// prefix")
        need(
            self.memory_bank is None or (isinstance(self.memory_bank, str) and not storage.is_s3(self.memory_bank)),
            f"memory_bank must be the path of a local memory bank folder (got {self.memory_bank!r})",
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "pipeline config") -> PipelineConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RlopsError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values = dict(data)
        # Each section's own messages name the flag; the file (or --set) is where it came from.
        if "split" in values and not isinstance(values["split"], SplitConfig):
            if not isinstance(values["split"], dict | None):
                raise RlopsError(f"{where}: split must be a mapping such as {{test_start: 2016-01-04}}")
            values["split"] = SplitConfig.from_dict(values["split"], f"{where}: split")
        if "walk_forward" in values and not isinstance(values["walk_forward"], WalkForwardConfig):
            values["walk_forward"] = WalkForwardConfig.from_dict(values["walk_forward"], f"{where}: walk_forward")
        for name in ("algos", "baselines"):
            if name in values:
                if not isinstance(values[name], list | tuple):
                    raise RlopsError(f"{where}: {name} must be a list")
                values[name] = tuple(values[name])
        try:
            return cls(**values)
        except TypeError as exc:
            raise RlopsError(f"{where}: {exc}") from exc

    def with_overrides(self, items: list[str], where: str = "--set") -> PipelineConfig:
        """`KEY=VALUE` settings on top of this config, each value read as its field's type."""
        values = self.to_dict()
        known = {f.name: f.type for f in fields(self)}
        for item in items:
            key, sep, text = item.partition("=")
            if not sep or key not in known:
                raise RlopsError(f"{where} {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(known))}")
            values[key] = _typed(key, str(known[key]), text, where)
        return PipelineConfig.from_dict(values, where)

    @classmethod
    def from_yaml(cls, path: str) -> PipelineConfig:
        try:
            data = yaml.safe_load(storage.read_bytes(path)) or {}
        except yaml.YAMLError as exc:
            raise RlopsError(f"{path}: not valid YAML ({exc})") from exc
        if not isinstance(data, dict):
            raise RlopsError(f"{path}: a pipeline config is a mapping of settings")
        return cls.from_dict(data, path)


def _typed(key: str, kind: str, text: str, where: str) -> Any:
    """A `--set` value as its field's type: strings stay verbatim (a dataset named 2020 is not a number)."""
    if kind == "str":
        return text
    if kind == "str | None":
        return None if text in ("", "null", "None") else text
    if kind == "int | None" and text in ("", "null", "None"):
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RlopsError(f"{where} {key}={text}: not a valid value ({exc})") from exc
    expected: dict[str, tuple[type, str]] = {
        "int": (int, "an integer"),
        "int | None": (int, "an integer, or null"),
        "bool": (bool, "true or false"),
        "tuple[str, ...]": (list, "a list such as [ppo, a3c]"),
        "dict[str, Any]": (dict, "a mapping such as {commission_bps: 5}"),
        "SplitConfig": (dict, "a mapping such as {test_start: 2016-01-04, embargo: 50}"),
        "WalkForwardConfig": (dict, "a mapping such as {folds: 3}"),
    }
    cls, words = expected[kind]
    if not isinstance(value, cls) or (cls is int and isinstance(value, bool)):
        raise RlopsError(f"{where} {key}={text}: {key} must be {words}")
    return value
