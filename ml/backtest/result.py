"""A backtest's full result, saved as Parquet + JSON to a folder or an s3:// prefix and loaded back."""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from ml.data import storage
from ml.data.parquet_bytes import parquet_bytes
from rlops_core.errors import RlopsError

RESULT_FORMAT = 1
TIMESERIES, TRADES, SUMMARY = "timeseries.parquet", "trades.parquet", "result.json"


@dataclass(frozen=True)
class CostBreakdown:
    commission: float
    slippage: float
    borrow: float

    @property
    def total(self) -> float:
        return self.commission + self.slippage + self.borrow


@dataclass(frozen=True)
class BacktestResult:
    """`timeseries` rows are bars (the first is the starting point, before any fill); `trades` round trips."""

    policy: str
    policy_kind: str
    dataset: str
    period: str
    period_start: str
    period_end: str
    timeseries: pd.DataFrame
    trades: pd.DataFrame
    metrics: dict[str, float]
    sharpe_ci: tuple[float, float]
    costs: CostBreakdown
    config: dict[str, Any]
    dataset_fingerprint: str
    checkpoint_sha256: str | None
    # Scored on dates the policy trained on (allowed explicitly); None in results saved before rlops recorded it.
    in_sample: bool | None = None
    warnings: tuple[str, ...] = ()  # provenance warnings: another dataset than the one trained on, no record
    training_period: tuple[str, str] | None = None  # a checkpoint's first and last training bar

    @property
    def equity(self) -> pd.Series:
        return self.timeseries["equity"]

    @property
    def returns(self) -> pd.Series:
        return self.timeseries["returns"]

    @property
    def positions(self) -> pd.DataFrame:
        return self.timeseries[[c for c in self.timeseries.columns if c.startswith("shares_")]]

    def summary(self) -> dict[str, Any]:
        return {
            "format": RESULT_FORMAT,
            "policy": self.policy,
            "policy_kind": self.policy_kind,
            "dataset": self.dataset,
            "period": self.period,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "metrics": self.metrics,
            "sharpe_ci": list(self.sharpe_ci),
            "costs": asdict(self.costs),
            "config": self.config,
            "dataset_fingerprint": self.dataset_fingerprint,
            "checkpoint_sha256": self.checkpoint_sha256,
            "in_sample": self.in_sample,
            "warnings": list(self.warnings),
            "training_period": list(self.training_period) if self.training_period else None,
            "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def save(self, destination: str) -> str:
        for name, frame in ((TIMESERIES, self.timeseries), (TRADES, self.trades)):
            storage.write_bytes(storage.join(destination, name), parquet_bytes(frame))
        text = json.dumps(self.summary(), indent=2, sort_keys=True, default=str)
        storage.write_bytes(storage.join(destination, SUMMARY), text.encode())
        return destination

    @classmethod
    def load(cls, source: str) -> BacktestResult:
        where = storage.join(source, SUMMARY)
        if not storage.exists(where):
            raise RlopsError(f"{source} holds no backtest result ({SUMMARY} is missing)")
        try:
            summary = json.loads(storage.read_bytes(where))
        except json.JSONDecodeError as exc:
            raise RlopsError(f"{where} is not valid JSON ({exc})") from exc
        if summary.get("format") != RESULT_FORMAT:
            raise RlopsError(f"{where}: result format {summary.get('format')} is not {RESULT_FORMAT}")
        frames = [
            pd.read_parquet(io.BytesIO(storage.read_bytes(storage.join(source, n)))) for n in (TIMESERIES, TRADES)
        ]
        return cls(
            policy=summary["policy"],
            policy_kind=summary["policy_kind"],
            dataset=summary["dataset"],
            period=summary["period"],
            period_start=summary["period_start"],
            period_end=summary["period_end"],
            timeseries=frames[0],
            trades=frames[1],
            metrics=summary["metrics"],
            sharpe_ci=(summary["sharpe_ci"][0], summary["sharpe_ci"][1]),
            costs=CostBreakdown(**summary["costs"]),
            config=summary["config"],
            dataset_fingerprint=summary["dataset_fingerprint"],
            checkpoint_sha256=summary["checkpoint_sha256"],
            in_sample=summary.get("in_sample"),
            warnings=tuple(summary.get("warnings") or ()),
            training_period=tuple(summary["training_period"]) if summary.get("training_period") else None,
        )
