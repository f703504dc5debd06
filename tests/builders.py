"""Shared test builders: small markets with hand-checkable prices, and well-formed CSV rows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ml.envs.market import MarketData


def make_market(
    open_: list[list[float]] | np.ndarray,
    close: list[list[float]] | np.ndarray,
    volume: list[list[float]] | np.ndarray | None = None,
    num_features: int = 1,
    periods_per_year: float = 252.0,
) -> MarketData:
    """A market whose prices are given (bars x assets) and whose features are zeros (window 1 works)."""
    o = np.asarray(open_, dtype=np.float64)
    c = np.asarray(close, dtype=np.float64)
    v = np.full_like(c, 1e12) if volume is None else np.asarray(volume, dtype=np.float64)
    bars, assets = c.shape
    return MarketData(
        timestamps=pd.date_range("2020-01-01", periods=bars, freq="D", tz="UTC"),
        symbols=tuple(f"A{i}" for i in range(assets)),
        open=o,
        close=c,
        volume=v,
        features=np.zeros((bars, assets * num_features)),
        feature_names=tuple(f"f{i}" for i in range(num_features)),
        first_decision=0,
        last_bar=bars - 1,
        periods_per_year=periods_per_year,
        fingerprint="sha256:test",
    )


def random_walk_market(bars: int, assets: int, seed: int, num_features: int = 3) -> MarketData:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, size=(bars, assets)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.005, size=(bars, assets)))
    volume = rng.uniform(1e3, 1e5, size=(bars, assets))
    market = make_market(open_, close, volume, num_features=num_features)
    return market._replace(features=rng.normal(size=(bars, assets * num_features)))


def write_csv(path: object, rows: list[dict[str, object]]) -> None:
    pd.DataFrame(rows).to_csv(str(path), index=False)


def good_rows(n: int = 5, start: str = "2024-01-01") -> list[dict[str, object]]:
    stamps = pd.bdate_range(start, periods=n)
    return [
        {"date": s.strftime("%Y-%m-%d"), "open": 10 + i, "high": 12 + i, "low": 9 + i, "close": 11 + i, "volume": 1000}
        for i, s in enumerate(stamps)
    ]


ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(script: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """A benchmark script run as `make` runs it: from the repository root, with the project on the path."""
    return subprocess.run(
        [sys.executable, script, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
