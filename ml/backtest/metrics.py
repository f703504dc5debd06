"""Performance metrics of an equity curve (periodic simple returns; conventions stated per function)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from rlops.errors import RlopsError

FloatArray = npt.NDArray[np.float64]


def returns_from_equity(equity: FloatArray) -> FloatArray:
    if len(equity) < 2:
        raise RlopsError("an equity curve needs at least two points to have returns")
    values: FloatArray = equity[1:] / equity[:-1] - 1.0
    return values


def total_return(returns: FloatArray) -> float:
    return float(np.prod(1.0 + returns) - 1.0)


def cagr(returns: FloatArray, periods_per_year: float) -> float:
    """Compound annual growth, with the year length given in bars (252 for daily)."""
    growth = float(np.prod(1.0 + returns))
    years = len(returns) / periods_per_year
    return growth ** (1.0 / years) - 1.0 if growth > 0 else -1.0


def annual_volatility(returns: FloatArray, periods_per_year: float) -> float:
    """Sample standard deviation (ddof=1), scaled by sqrt(periods per year), as empyrical computes it."""
    return float(np.std(returns, ddof=1) * np.sqrt(periods_per_year))


def sharpe(returns: FloatArray, periods_per_year: float, risk_free: float = 0.0) -> float:
    """Annualised mean excess return over its sample standard deviation; 0 for a flat (zero-variance) series."""
    excess = returns - risk_free / periods_per_year
    std = float(np.std(excess, ddof=1))
    return float(np.mean(excess) / std * np.sqrt(periods_per_year)) if std > 0 else 0.0


def max_drawdown(returns: FloatArray) -> float:
    """Largest peak-to-trough fall of the compounded curve (starting from 1), as a negative fraction."""
    curve = np.concatenate([[1.0], np.cumprod(1.0 + returns)])
    peaks = np.maximum.accumulate(curve)
    return float(np.min(curve / peaks - 1.0))


@dataclass(frozen=True)
class Headline:
    total_return: float
    cagr: float
    annual_volatility: float
    sharpe: float
    max_drawdown: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def headline(equity: FloatArray, periods_per_year: float) -> Headline:
    returns = returns_from_equity(equity)
    return Headline(
        total_return=total_return(returns),
        cagr=cagr(returns, periods_per_year),
        annual_volatility=annual_volatility(returns, periods_per_year),
        sharpe=sharpe(returns, periods_per_year),
        max_drawdown=max_drawdown(returns),
    )
