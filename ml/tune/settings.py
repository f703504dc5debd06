"""The one typed configuration of a tuning run, checked before anything is created and saved with it.

``rlops tune`` builds a :class:`TuneSettings` from its flags; the experiment folder keeps it as
``tune_settings.yaml`` so that ``--resume`` rebuilds exactly the data, objective and trainable it ran with.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

import yaml

from ml.agents.config import ALGOS
from rlops_core.errors import RlopsError

SEARCHES = ("grid", "random", "bayes", "bayesopt")
SCHEDULERS = ("asha", "pbt", "none")
SETTINGS_FILE = "tune_settings.yaml"
# Metrics where smaller is better; every other backtest metric is maximised unless --mode says otherwise.
MINIMISED = frozenset(
    {"annual_volatility", "max_drawdown_duration", "longest_drawdown_duration", "turnover", "turnover_annual"}
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise RlopsError(message)


@dataclass(frozen=True)
class TuneSettings:
    """Everything ``rlops tune`` decides; one value per flag."""

    algo: str
    search: str = "bayes"
    samples: int = 8
    scheduler: str = "asha"
    dataset: str = "sp500"
    metric: str = "sharpe"
    mode: str | None = None
    """``max`` or ``min``; default from the metric (see ``MINIMISED``)."""
    iterations: int = 10
    """Reports per trial (the ASHA/PBT time axis); each trains ``steps_per_iteration`` environment steps."""
    steps_per_iteration: int = 4096
    checkpoint_every: int = 1
    """Save a checkpoint with every this many reports (always with the last)."""
    folds: int = 1
    """1: score on the whole validation split; K > 1: mean over K consecutive windows of it (walk-forward)."""
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int = 0
    """0: as many trials at once as the cluster's resources allow."""
    max_failures: int = 1
    """Retries of a failed trial from its last checkpoint before it is reported as failed."""
    address: str | None = None
    """None: start a local Ray cluster; ``auto`` or ``host:port`` or ``ray://host:port``: join that one."""
    num_cpus: int | None = None
    """CPUs of the local cluster (None: all of this machine's)."""
    storage: str = "tune_results"
    """Local directory or ``s3://bucket/prefix`` holding the experiment folders."""
    name: str = ""
    """Experiment folder name (default: ``<algo>-<search>-<timestamp>``)."""
    space: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Search-space overrides (a YAML file's mapping), merged over the algorithm's defaults."""
    base: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Fixed agent hyperparameters under the searched ones (a ``rlops train --config`` file's values)."""
    env: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Trading environment settings (EnvConfig keys) for training and scoring alike."""
    split: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The train / validation / test cut (``SplitConfig`` keys); trials train on train, score on validation."""
    grace_period: int = 1
    reduction_factor: float = 2.0
    seed: int = 0
    smoke: bool = False

    def __post_init__(self) -> None:
        _check(self.algo in ALGOS, f"unknown algorithm {self.algo!r}: choose one of {', '.join(ALGOS)}")
        _check(self.search in SEARCHES, f"unknown search {self.search!r}: choose one of {', '.join(SEARCHES)}")
        _check(
            self.scheduler in SCHEDULERS,
            f"unknown scheduler {self.scheduler!r}: choose one of {', '.join(SCHEDULERS)}",
        )
        _check(self.mode in (None, "max", "min"), f"mode must be max or min, not {self.mode!r}")
        _check(self.samples >= 1, f"--samples must be >= 1 (got {self.samples})")
        _check(self.iterations >= 1, f"--iterations must be >= 1 (got {self.iterations})")
        _check(self.steps_per_iteration >= 1, f"--steps-per-iteration must be >= 1 (got {self.steps_per_iteration})")
        _check(self.checkpoint_every >= 1, f"--checkpoint-every must be >= 1 (got {self.checkpoint_every})")
        _check(self.folds >= 1, f"--folds must be >= 1 (got {self.folds})")
        _check(self.cpus_per_trial > 0, f"--cpus-per-trial must be > 0 (got {self.cpus_per_trial})")
        _check(self.gpus_per_trial >= 0, f"--gpus-per-trial must be >= 0 (got {self.gpus_per_trial})")
        _check(self.max_concurrent >= 0, f"--max-concurrent must be >= 0 (got {self.max_concurrent})")
        _check(self.max_failures >= 0, f"--max-failures must be >= 0 (got {self.max_failures})")
        _check(self.num_cpus is None or self.num_cpus >= 1, f"--num-cpus must be >= 1 (got {self.num_cpus})")
        _check(self.grace_period >= 1, f"grace period must be >= 1 (got {self.grace_period})")
        _check(self.reduction_factor > 1, f"reduction factor must be > 1 (got {self.reduction_factor})")
        _check(
            not self.name or bool(_NAME.match(self.name)), f"experiment name {self.name!r}: use letters, digits, _.-"
        )
        _check(bool(self.storage), "--storage must name a directory or an s3:// prefix")
        from ml.data.splits import SplitConfig

        SplitConfig.from_dict(self.split)
        if self.scheduler == "pbt":
            # PBT explores by mutating running trials; a model-based searcher would be fighting it.
            _check(
                self.search in ("grid", "random"),
                f"the pbt scheduler needs --search random or grid (got {self.search})",
            )
        from ml.backtest.metrics import METRIC_NAMES

        _check(
            self.metric in METRIC_NAMES,
            f"unknown metric {self.metric!r}: choose one of {', '.join(METRIC_NAMES)}",
        )

    @property
    def resolved_mode(self) -> str:
        return self.mode or ("min" if self.metric in MINIMISED else "max")

    @property
    def experiment_path(self) -> str:
        return f"{self.storage.rstrip('/')}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TuneSettings:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        _check(not unknown, f"unknown tune setting(s): {', '.join(unknown)}")
        return cls(**data)
