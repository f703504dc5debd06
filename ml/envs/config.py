"""The one configuration of the market simulation, validated before any environment is built."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from rlops_core.errors import RlopsError

ActionMode = Literal["discrete", "continuous"]
RewardMode = Literal["log_return", "differential_sharpe"]


@dataclass(frozen=True)
class EnvConfig:
    """Market constraints and the agent's interface.

    Execution convention ("close-to-next-open"): the agent decides at the close of bar t from data up to t;
    orders are sized at that close and filled at the open of bar t+1; the portfolio is marked at the close of
    t+1, which is what the reward sees. All costs are paid in cash, so they are inside the reward.
    """

    window: int = 32  # bars of features in each observation
    action_mode: ActionMode = "discrete"
    # Discrete actions pick one of these target weights per asset (default: short / flat / long).
    levels: tuple[float, ...] = (-1.0, 0.0, 1.0)
    # Continuous actions are target weights in [weight_low, 1]; use 0.0 for long-only.
    weight_low: float = -1.0
    allow_short: bool = True
    max_position: float = 1.0  # |weight| cap per asset, as a fraction of equity
    leverage: float = 1.0  # cap on gross exposure (sum of |weights|); cash may go negative up to (leverage-1)*equity
    commission_bps: float = 5.0
    slippage_bps: float = 2.0  # fixed half-spread paid on every fill
    impact_coef: float = 0.1  # extra slippage per unit of participation in the decision bar's volume
    participation_cap: float = 0.1  # max share of the decision bar's volume one order may take; 0 = no cap
    borrow_rate: float = 0.02  # annual rate charged on the value of short positions, per bar
    lot_size: float = 0.0  # 0 = fractional shares; e.g. 1.0 = whole shares only
    initial_cash: float = 100_000.0
    reward: RewardMode = "log_return"
    dsr_eta: float = 0.01  # adaptation rate of the differential Sharpe ratio's moving moments
    episode_length: int | None = None  # None = run to the end of the period
    random_start: bool = False  # start each episode at a random bar (needs episode_length)

    def __post_init__(self) -> None:
        def need(ok: bool, field: str, rule: str, value: object) -> None:
            if not ok:
                raise RlopsError(f"EnvConfig.{field} {rule} (got {value!r})")

        need(self.window >= 1, "window", "must be >= 1 bar", self.window)
        need(
            self.action_mode in ("discrete", "continuous"),
            "action_mode",
            "must be discrete or continuous",
            self.action_mode,
        )
        need(len(self.levels) >= 2, "levels", "needs at least two target weights", self.levels)
        need(all(-1.0 <= x <= 1.0 for x in self.levels), "levels", "must lie in [-1, 1]", self.levels)
        need(
            self.weight_low in (-1.0, 0.0),
            "weight_low",
            "must be -1.0 (long/short) or 0.0 (long only)",
            self.weight_low,
        )
        if not self.allow_short:
            need(min(self.levels) >= 0, "levels", "contain short weights but allow_short is False", self.levels)
            need(self.weight_low >= 0, "weight_low", "is negative but allow_short is False", self.weight_low)
        need(self.leverage >= 1.0, "leverage", "must be >= 1", self.leverage)
        need(
            0.0 < self.max_position <= self.leverage,
            "max_position",
            "must be in (0, leverage]",
            self.max_position,
        )
        for name in ("commission_bps", "slippage_bps", "impact_coef", "borrow_rate", "lot_size"):
            need(getattr(self, name) >= 0.0, name, "must be >= 0", getattr(self, name))
        need(
            0.0 <= self.participation_cap <= 1.0,
            "participation_cap",
            "must be in [0, 1]",
            self.participation_cap,
        )
        need(self.initial_cash > 0, "initial_cash", "must be > 0", self.initial_cash)
        need(
            self.reward in ("log_return", "differential_sharpe"),
            "reward",
            "must be log_return or differential_sharpe",
            self.reward,
        )
        need(0.0 < self.dsr_eta < 1.0, "dsr_eta", "must be in (0, 1)", self.dsr_eta)
        if self.episode_length is not None:
            need(self.episode_length >= 1, "episode_length", "must be >= 1 bar", self.episode_length)
        need(
            not self.random_start or self.episode_length is not None,
            "random_start",
            "needs episode_length",
            self.random_start,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnvConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise RlopsError(f"EnvConfig: unknown setting(s) {', '.join(sorted(unknown))}")
        values = dict(data)
        if "levels" in values:
            values["levels"] = tuple(values["levels"])
        return cls(**values)
