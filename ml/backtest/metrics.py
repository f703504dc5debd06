"""Performance metrics of periodic simple returns, for one series or many at once.

Conventions shared by every function (docs/metrics.md has the full table and the differences from quantstats and
empyrical):

- ``returns`` are periodic simple returns (0.01 = +1% over one bar), finite, at least two periods.
- ``periods_per_year`` is the number of bars in a year (252 for daily bars) and annualises everything.
- ``risk_free`` is an *annual* rate, turned into a per-period rate geometrically:
  ``rf_p = (1 + risk_free) ** (1 / periods_per_year) - 1`` (as quantstats does). Only Sharpe, Sortino and alpha use it.
- A ratio whose denominator is zero is ``0.0`` when its numerator is zero too and ``inf`` when the numerator is
  positive (a strategy with gains and no losses has an infinite profit factor). Sharpe is the exception: a
  zero-variance series has Sharpe ``0.0``, because an infinite Sharpe from a riskless series would top every
  leaderboard without meaning anything. Outputs are never NaN.
- Bad input (NaN or inf, wrong length, empty, wrong dimensions) raises ``RlopsError`` naming the argument.

The work is done by kernels over a 2-D array whose axis 0 is time and axis 1 the series; the single-series functions
are thin wrappers, and :func:`compute_metrics_many` runs every kernel once over a whole matrix of series.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import numpy.typing as npt

from rlops_core.errors import RlopsError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ArrayLike = npt.ArrayLike

TAIL = 0.05  # VaR / CVaR / tail-ratio cut-off: the 5% worst (and best) periods.


# --------------------------------------------------------------------------------------------------------------------
# validation


def _finite(name: str, values: ArrayLike) -> FloatArray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise RlopsError(f"{name}: not numeric ({exc})") from exc
    if array.size == 0:
        raise RlopsError(f"{name}: empty")
    if not np.isfinite(array).all():
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise RlopsError(f"{name}: {bad} value(s) are NaN or infinite")
    return array


def _returns_1d(returns: ArrayLike, name: str = "returns") -> FloatArray:
    array = _finite(name, returns)
    if array.ndim != 1:
        raise RlopsError(f"{name}: expected a 1-D series, got shape {array.shape}")
    if len(array) < 2:
        raise RlopsError(f"{name}: need at least 2 periods, got {len(array)}")
    return array


def _periods(periods_per_year: float) -> float:
    value = float(periods_per_year)
    if not math.isfinite(value) or value <= 0:
        raise RlopsError(f"periods_per_year: must be a positive number, got {periods_per_year!r}")
    return value


def risk_free_per_period(risk_free: float, periods_per_year: float) -> float:
    """The per-period rate that compounds to the annual ``risk_free`` over ``periods_per_year`` bars."""
    rate = float(risk_free)
    if not math.isfinite(rate) or rate <= -1:
        raise RlopsError(f"risk_free: must be an annual rate above -1, got {risk_free!r}")
    return float((1.0 + rate) ** (1.0 / _periods(periods_per_year)) - 1.0)


# --------------------------------------------------------------------------------------------------------------------
# kernels: x is (n_periods, n_series); each returns one value per series


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    """num / den with the module's zero-denominator rule: 0 for 0/0, +-inf otherwise."""
    safe = np.where(den == 0, 1.0, den)
    result: FloatArray = np.where(den == 0, np.where(num == 0, 0.0, np.copysign(np.inf, num)), num / safe)
    return result


def _growth(x: FloatArray) -> FloatArray:
    growth: FloatArray = np.prod(1.0 + x, axis=0)
    return growth


def _k_cagr(growth: FloatArray, n: int, ppy: float) -> FloatArray:
    # A curve that reaches zero or below has no real root; -100% a year is the honest figure.
    positive = growth > 0
    return np.where(positive, np.abs(growth) ** (ppy / n) - 1.0, -1.0)


def _k_std(x: FloatArray) -> FloatArray:
    std = np.std(x, axis=0, ddof=1)
    # Identical values leave a ~1e-18 residue around their float mean; treat it as the zero it is.
    return np.where(np.max(x, axis=0) == np.min(x, axis=0), 0.0, std)


def _k_sharpe(excess: FloatArray, ppy: float) -> FloatArray:
    std = _k_std(excess)
    mean = excess.mean(axis=0)
    return np.where(std > 0, mean / np.where(std > 0, std, 1.0) * math.sqrt(ppy), 0.0)


def _k_sortino(excess: FloatArray, ppy: float) -> FloatArray:
    downside = np.sqrt(np.mean(np.minimum(excess, 0.0) ** 2, axis=0))
    return _ratio(excess.mean(axis=0), downside) * math.sqrt(ppy)


def _k_drawdown(x: FloatArray) -> tuple[FloatArray, IntArray, IntArray]:
    """Max drawdown, the duration of that deepest drawdown, and the longest drawdown, per series."""
    n, m = x.shape
    curve = np.empty((n + 1, m))
    curve[0] = 1.0
    np.cumprod(1.0 + x, axis=0, out=curve[1:])
    peaks = np.maximum.accumulate(curve, axis=0)
    drawdown = curve / peaks - 1.0
    max_dd = drawdown.min(axis=0)

    at_peak = curve >= peaks
    # int32 halves the memory traffic of the index arrays; series longer than 2**31 bars are not a concern.
    idx = np.arange(n + 1, dtype=np.int32)[:, None]
    peak_idx = np.maximum.accumulate(at_peak * idx, axis=0)

    # A bar that is back at the high-water mark right after being below it closes an episode.
    recovered = at_peak[1:] & ~at_peak[:-1]
    closed = np.where(recovered, idx[1:] - peak_idx[:-1], 0).max(axis=0)
    still_open = n - peak_idx[-1]
    longest = np.maximum(closed, still_open)

    trough = drawdown.argmin(axis=0)
    cols = np.arange(m)
    start = peak_idx[trough, cols]
    after = at_peak & (idx > trough[None, :])
    end = np.where(after.any(axis=0), after.argmax(axis=0), n)
    deepest = np.where(max_dd < 0, end - start, 0)
    return max_dd, deepest.astype(np.int64), longest.astype(np.int64)


def _quantile_sorted(s: FloatArray, q: float) -> FloatArray:
    """Linear-interpolation quantile of columns already sorted ascending (numpy's default 'linear' method)."""
    n = s.shape[0]
    h = (n - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, n - 1)
    frac = h - lo
    result: FloatArray = s[lo] + (s[hi] - s[lo]) * frac
    return result


def _k_cvar_sorted(s: FloatArray) -> FloatArray:
    cutoff = int((s.shape[0] - 1) * TAIL)
    tail: FloatArray = s[: cutoff + 1].mean(axis=0)
    return tail


def _k_skew_kurt(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Bias-adjusted sample skewness G1 and excess kurtosis G2 (pandas' and Excel's SKEW / KURT)."""
    n = x.shape[0]
    d = x - x.mean(axis=0)
    d2 = d * d
    m2 = np.mean(d2, axis=0)
    m3 = np.mean(d2 * d, axis=0)
    m4 = np.mean(d2 * d2, axis=0)
    flat = (_k_std(x) == 0) | (m2 == 0)
    safe = np.where(flat, 1.0, m2)
    g1 = m3 / safe**1.5
    g2 = m4 / safe**2 - 3.0
    skew = g1 * math.sqrt(n * (n - 1)) / (n - 2) if n > 2 else np.zeros_like(g1)
    kurt = ((n + 1) * g2 + 6.0) * (n - 1) / ((n - 2) * (n - 3)) if n > 3 else np.zeros_like(g2)
    return np.where(flat, 0.0, skew), np.where(flat, 0.0, kurt)


def _k_alpha_beta(excess: FloatArray, bench_excess: FloatArray, ppy: float) -> tuple[FloatArray, FloatArray]:
    b_centered = bench_excess - bench_excess.mean(axis=0)
    var = np.mean(b_centered * b_centered, axis=0)
    cov = np.mean(b_centered * excess, axis=0)
    flat = _k_std(bench_excess) == 0
    beta = np.where(flat, 0.0, cov / np.where(flat, 1.0, var))
    alpha = (excess.mean(axis=0) - beta * bench_excess.mean(axis=0)) * ppy
    return alpha, beta


# --------------------------------------------------------------------------------------------------------------------
# single-series metrics


def returns_from_equity(equity: FloatArray) -> FloatArray:
    if len(equity) < 2:
        raise RlopsError("an equity curve needs at least two points to have returns")
    values: FloatArray = equity[1:] / equity[:-1] - 1.0
    return values


def _col(returns: ArrayLike) -> FloatArray:
    return _returns_1d(returns)[:, None]


def total_return(returns: ArrayLike) -> float:
    """Compounded return over the whole series: prod(1 + r) - 1."""
    return float(_growth(_col(returns))[0] - 1.0)


def cagr(returns: ArrayLike, periods_per_year: float) -> float:
    """Compound annual growth: growth ** (periods_per_year / n) - 1, the year length given in bars.

    Years are counted in bars (n / periods_per_year), as empyrical and quantstats >= 0.0.80 do; older quantstats
    counted calendar days. A curve that ends at or below zero gives -1.0 (quantstats gives NaN).
    """
    x = _col(returns)
    return float(_k_cagr(_growth(x), x.shape[0], _periods(periods_per_year))[0])


def annual_volatility(returns: ArrayLike, periods_per_year: float) -> float:
    """Sample standard deviation (ddof=1) scaled by sqrt(periods_per_year), as empyrical and quantstats compute it."""
    return float(_k_std(_col(returns))[0] * math.sqrt(_periods(periods_per_year)))


def sharpe(returns: ArrayLike, periods_per_year: float, risk_free: float = 0.0) -> float:
    """mean(r - rf_p) / std(r - rf_p, ddof=1) * sqrt(periods_per_year); 0.0 for a zero-variance series."""
    ppy = _periods(periods_per_year)
    return float(_k_sharpe(_col(returns) - risk_free_per_period(risk_free, ppy), ppy)[0])


def sortino(returns: ArrayLike, periods_per_year: float, risk_free: float = 0.0) -> float:
    """mean(e) / sqrt(mean(min(e, 0)^2)) * sqrt(periods_per_year) with e = r - rf_p.

    The downside deviation is taken over *all* periods (gains count as zero), as empyrical and quantstats >= 0.0.80
    do, not as the standard deviation of the losing periods only. No downside: +inf if mean(e) > 0, else 0.0.
    """
    ppy = _periods(periods_per_year)
    return float(_k_sortino(_col(returns) - risk_free_per_period(risk_free, ppy), ppy)[0])


def max_drawdown(returns: ArrayLike) -> float:
    """Largest peak-to-trough fall of the compounded curve (starting from 1), as a negative fraction (0 if none)."""
    return float(_k_drawdown(_col(returns))[0][0])


def drawdown_durations(returns: ArrayLike) -> tuple[int, int]:
    """(bars of the deepest drawdown, bars of the longest drawdown).

    The curve starts at 1 before the first return (bar 0); bar i is the value after return i. A drawdown episode
    runs from the bar of its peak to the first bar back at or above that peak, so a one-bar dip that recovers on the
    next bar lasts 2 bars. An episode not recovered by the end runs to the last bar (n - peak bar). No drawdown: 0.
    """
    _, deepest, longest = _k_drawdown(_col(returns))
    return int(deepest[0]), int(longest[0])


def calmar(returns: ArrayLike, periods_per_year: float) -> float:
    """CAGR / |max drawdown|; no drawdown: +inf if CAGR > 0, else 0.0 (empyrical gives NaN)."""
    x = _col(returns)
    max_dd = _k_drawdown(x)[0]
    return float(_ratio(_k_cagr(_growth(x), x.shape[0], _periods(periods_per_year)), -max_dd)[0])


def win_rate(returns: ArrayLike) -> float:
    """Share of the non-zero periods that are positive (flat periods are neither wins nor losses); 0.0 if all flat."""
    x = _returns_1d(returns)
    nonzero = np.count_nonzero(x)
    return float(np.count_nonzero(x > 0) / nonzero) if nonzero else 0.0


def profit_factor(returns: ArrayLike) -> float:
    """Sum of gains / |sum of losses| over periods; no losses: +inf if there are gains, else 0.0."""
    x = _returns_1d(returns)
    return float(_ratio(np.array([x[x > 0].sum()]), np.array([-x[x < 0].sum()]))[0])


def avg_win(returns: ArrayLike) -> float:
    """Mean of the positive periods (0.0 if none)."""
    x = _returns_1d(returns)
    wins = x[x > 0]
    return float(wins.mean()) if len(wins) else 0.0


def avg_loss(returns: ArrayLike) -> float:
    """Mean of the negative periods, a negative number (0.0 if none)."""
    x = _returns_1d(returns)
    losses = x[x < 0]
    return float(losses.mean()) if len(losses) else 0.0


def value_at_risk(returns: ArrayLike) -> float:
    """Historical 95% VaR: the 5th percentile of the returns (linear interpolation), a negative number for a loss.

    empyrical's ``value_at_risk`` is the same; quantstats' ``var`` is parametric (normal) and differs on purpose.
    """
    return float(_quantile_sorted(np.sort(_col(returns), axis=0), TAIL)[0])


def conditional_value_at_risk(returns: ArrayLike) -> float:
    """Historical 95% CVaR (expected shortfall): the mean of the worst floor((n - 1) * 0.05) + 1 returns.

    That is empyrical's definition, and quantstats' ``cvar(method="historical")`` for returns without ties.
    """
    return float(_k_cvar_sorted(np.sort(_col(returns), axis=0))[0])


def tail_ratio(returns: ArrayLike) -> float:
    """|95th percentile| / |5th percentile|; a zero 5th percentile gives +inf (0.0 if the 95th is zero too)."""
    s = np.sort(_col(returns), axis=0)
    return float(_ratio(np.abs(_quantile_sorted(s, 1 - TAIL)), np.abs(_quantile_sorted(s, TAIL)))[0])


def skew(returns: ArrayLike) -> float:
    """Bias-adjusted sample skewness G1 (pandas' ``Series.skew``); 0.0 with zero variance or fewer than 3 periods."""
    return float(_k_skew_kurt(_col(returns))[0][0])


def kurtosis(returns: ArrayLike) -> float:
    """Bias-adjusted sample *excess* kurtosis G2 (pandas' ``Series.kurt``; a normal sample gives about 0).

    0.0 with zero variance or fewer than 4 periods.
    """
    return float(_k_skew_kurt(_col(returns))[1][0])


def alpha_beta(
    returns: ArrayLike, benchmark: ArrayLike, periods_per_year: float, risk_free: float = 0.0
) -> tuple[float, float]:
    """CAPM (alpha, beta) of ``returns`` against ``benchmark``, both in excess of rf_p.

    beta = cov(r - rf_p, b - rf_p) / var(b - rf_p); alpha = (mean(r - rf_p) - beta * mean(b - rf_p)) *
    periods_per_year, an arithmetic annualisation as quantstats' ``greeks`` (which has no risk-free rate). empyrical
    compounds instead: its alpha is (1 + alpha / periods_per_year) ** periods_per_year - 1. A benchmark with zero
    variance gives beta 0.0.
    """
    x = _col(returns)
    b = _aligned("benchmark", benchmark, x)
    ppy = _periods(periods_per_year)
    rf = risk_free_per_period(risk_free, ppy)
    a, be = _k_alpha_beta(x - rf, b - rf, ppy)
    return float(a[0]), float(be[0])


def exposure(positions: ArrayLike) -> float:
    """Share of bars with any non-zero position; ``positions`` is (n,) or (n, n_assets)."""
    pos = _finite("positions", positions)
    if pos.ndim == 1:
        pos = pos[:, None]
    return float(np.mean(np.any(pos.reshape(len(pos), -1) != 0, axis=1)))


def turnover(traded_value: ArrayLike, nav: ArrayLike, periods_per_year: float) -> tuple[float, float]:
    """(per-period, annualised) turnover per net asset value: mean traded value per bar / mean NAV.

    ``traded_value`` is the absolute value traded in each bar (buys and sales both count) and ``nav`` the net asset
    value (equity) the bar's orders were sized on, in the same unit. Annualised = per-period * periods_per_year, so
    a book fully replaced once a year (sold and bought back) has an annual turnover of 2. An average NAV at or
    below zero (a ruined account): 0.0 if nothing traded, else +inf.
    """
    traded = _nonneg("traded_value", traded_value)
    value = _finite("nav", nav)
    if traded.ndim != 1 or value.shape != traded.shape:
        raise RlopsError(f"nav: shape {value.shape} does not match traded_value {traded.shape} (both 1-D, one per bar)")
    per = float(_k_turnover(traded[:, None], value[:, None])[0])
    return per, per * _periods(periods_per_year)


def _k_turnover(traded: FloatArray, nav: FloatArray) -> FloatArray:
    """Mean traded over mean NAV, per column; a non-positive mean NAV counts as no capital at all."""
    capital = np.maximum(nav.mean(axis=0), 0.0)
    return _ratio(traded.mean(axis=0), capital)


def trade_win_rate(trade_pnl: ArrayLike) -> float:
    """Share of trades with PnL > 0 among all trades (a break-even trade is not a win); 0.0 with no trades."""
    pnl = np.asarray(trade_pnl, dtype=np.float64).ravel()
    if len(pnl) == 0:
        return 0.0
    pnl = _finite("trade_pnl", pnl)
    return float(np.count_nonzero(pnl > 0) / len(pnl))


# --------------------------------------------------------------------------------------------------------------------
# the full set


@dataclass(frozen=True)
class Metrics:
    """Every metric of one return series. Fields without their input (no benchmark, no positions, ...) are 0."""

    n_periods: int
    periods_per_year: float  # the annualisation used, carried so a table of Metrics can be de-annualised
    total_return: float
    cagr: float
    annual_volatility: float
    sharpe: float
    sortino: float
    calmar: float
    max_drawdown: float
    max_drawdown_duration: int  # bars of the deepest drawdown, peak to recovery (or to the end)
    longest_drawdown_duration: int  # bars of the longest drawdown of any depth
    win_rate: float  # per period
    profit_factor: float
    avg_win: float  # per period
    avg_loss: float  # per period, negative
    var_95: float  # historical, a return (negative for a loss)
    cvar_95: float
    skew: float
    kurtosis: float  # excess
    tail_ratio: float
    alpha: float  # annualised, arithmetic
    beta: float
    exposure: float
    turnover: float  # per period, traded value over the average net asset value
    turnover_annual: float
    trade_win_rate: float
    n_trades: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


INT_FIELDS = ("n_periods", "max_drawdown_duration", "longest_drawdown_duration", "n_trades")
METRIC_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Metrics))


def compute_metrics(
    returns: ArrayLike,
    periods_per_year: float,
    risk_free: float = 0.0,
    benchmark: ArrayLike | None = None,
    positions: ArrayLike | None = None,
    traded_value: ArrayLike | None = None,
    nav: ArrayLike | None = None,
    trade_pnl: ArrayLike | None = None,
) -> Metrics:
    """All metrics of one series of periodic returns (see the module docstring for the conventions).

    ``benchmark``, ``traded_value`` and ``nav`` are one value per period; ``positions`` is (n,) or
    (n, n_assets); ``trade_pnl`` is the PnL column of the trades table (any length, possibly empty).
    """
    x = _returns_1d(returns)
    pos = None
    if positions is not None:
        pos = _finite("positions", positions)
        if pos.ndim not in (1, 2):
            raise RlopsError(f"positions: expected (n,) or (n, n_assets), got shape {pos.shape}")
        pos = pos[:, None] if pos.ndim == 1 else pos[:, None, :]
    table = compute_metrics_many(
        x[:, None],
        periods_per_year,
        risk_free,
        benchmark=None if benchmark is None else _returns_1d(benchmark, "benchmark")[:, None],
        positions=pos,
        traded_value=None if traded_value is None else np.asarray(traded_value, dtype=np.float64)[:, None],
        nav=None if nav is None else np.asarray(nav, dtype=np.float64)[:, None],
        trade_pnl=None if trade_pnl is None else [np.asarray(trade_pnl, dtype=np.float64).ravel()],
    )
    values = {name: int(col[0]) if name in INT_FIELDS else float(col[0]) for name, col in table.items()}
    return Metrics(**values)  # type: ignore[arg-type]


def _aligned(name: str, values: ArrayLike, x: FloatArray) -> FloatArray:
    """``values`` (time first) as the (n_periods, n_series) shape of ``x``: one shared series or one per series."""
    array = _finite(name, values)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] != x.shape[0] or array.shape[1] not in (1, x.shape[1]):
        raise RlopsError(f"{name}: shape {array.shape} does not match returns {x.shape} (periods x series)")
    return np.broadcast_to(array, x.shape)


def _nonneg(name: str, values: ArrayLike) -> FloatArray:
    array = _finite(name, values)
    if (array < 0).any():
        raise RlopsError(f"{name}: must not be negative (it is an absolute amount)")
    return array


def compute_metrics_many(
    returns: ArrayLike,
    periods_per_year: float,
    risk_free: float = 0.0,
    benchmark: ArrayLike | None = None,
    positions: ArrayLike | None = None,
    traded_value: ArrayLike | None = None,
    nav: ArrayLike | None = None,
    trade_pnl: Sequence[ArrayLike] | None = None,
    axis: int = 0,
) -> dict[str, FloatArray | IntArray]:
    """Every metric of many return series at once, without a Python loop over the series.

    ``returns`` is 2-D with time along ``axis`` (0: one series per column, like a DataFrame; 1: one series per
    row). ``benchmark`` is one shared series (1-D) or one per series (the shape of ``returns``); ``traded_value``
    and ``nav`` have the shape of ``returns``; ``positions`` too, or an extra trailing asset axis;
    ``trade_pnl`` is one PnL array per series. Returns {metric name: array with one value per series}, the names
    and conventions of :class:`Metrics` (int64 arrays for its int fields); column i equals
    ``compute_metrics`` on series i.
    """
    raw = _finite("returns", returns)
    if raw.ndim != 2:
        raise RlopsError(f"returns: expected a 2-D array (periods x series), got shape {raw.shape}")
    if axis not in (0, 1):
        raise RlopsError(f"axis: must be 0 or 1, got {axis!r}")

    def time_first(array: FloatArray) -> FloatArray:
        return np.moveaxis(array, axis, 0) if array.ndim >= 2 else array

    x = time_first(raw)
    n, m = x.shape
    if n < 2:
        raise RlopsError(f"returns: need at least 2 periods, got {n}")
    ppy = _periods(periods_per_year)
    rf = risk_free_per_period(risk_free, ppy)
    excess = x - rf
    zeros = np.zeros(m)

    growth = _growth(x)
    cagr_ = _k_cagr(growth, n, ppy)
    max_dd, dd_deepest, dd_longest = _k_drawdown(x)
    s = np.sort(x, axis=0)
    var = _quantile_sorted(s, TAIL)
    skew_, kurt_ = _k_skew_kurt(x)

    wins = x > 0
    losses = x < 0
    n_wins = wins.sum(axis=0)
    n_losses = losses.sum(axis=0)
    gains = np.where(wins, x, 0.0).sum(axis=0)
    pains = np.where(losses, x, 0.0).sum(axis=0)
    n_nonzero = n_wins + n_losses

    out: dict[str, FloatArray | IntArray] = {
        "n_periods": np.full(m, n, dtype=np.int64),
        "periods_per_year": np.full(m, ppy),
        "total_return": growth - 1.0,
        "cagr": cagr_,
        "annual_volatility": _k_std(x) * math.sqrt(ppy),
        "sharpe": _k_sharpe(excess, ppy),
        "sortino": _k_sortino(excess, ppy),
        "calmar": _ratio(cagr_, -max_dd),
        "max_drawdown": max_dd,
        "max_drawdown_duration": dd_deepest,
        "longest_drawdown_duration": dd_longest,
        "win_rate": np.where(n_nonzero > 0, n_wins / np.maximum(n_nonzero, 1), 0.0),
        "profit_factor": _ratio(gains, -pains),
        "avg_win": np.where(n_wins > 0, gains / np.maximum(n_wins, 1), 0.0),
        "avg_loss": np.where(n_losses > 0, pains / np.maximum(n_losses, 1), 0.0),
        "var_95": var,
        "cvar_95": _k_cvar_sorted(s),
        "skew": skew_,
        "kurtosis": kurt_,
        "tail_ratio": _ratio(np.abs(_quantile_sorted(s, 1 - TAIL)), np.abs(var)),
    }

    if benchmark is None:
        out["alpha"], out["beta"] = zeros, zeros.copy()
    else:
        bench = time_first(_finite("benchmark", benchmark))
        out["alpha"], out["beta"] = _k_alpha_beta(excess, _aligned("benchmark", bench, x) - rf, ppy)

    if positions is None:
        out["exposure"] = zeros.copy()
    else:
        pos = time_first(_finite("positions", positions))
        if pos.shape[:2] != (n, m) or pos.ndim > 3:
            raise RlopsError(f"positions: shape {pos.shape} (time first) does not match returns {(n, m)}")
        active = (pos != 0) if pos.ndim == 2 else (pos != 0).any(axis=2)
        out["exposure"] = active.mean(axis=0)

    if (traded_value is None) != (nav is None):
        raise RlopsError("traded_value and nav: give both (turnover is the traded value per net asset value)")
    if traded_value is None or nav is None:
        out["turnover"], out["turnover_annual"] = zeros.copy(), zeros.copy()
    else:
        traded = time_first(_nonneg("traded_value", traded_value))
        value = time_first(_finite("nav", nav))
        for name, array in (("traded_value", traded), ("nav", value)):
            if array.shape != (n, m):
                raise RlopsError(f"{name}: shape {array.shape} (time first) does not match returns {(n, m)}")
        per = _k_turnover(traded, value)
        out["turnover"], out["turnover_annual"] = per, per * ppy

    if trade_pnl is None:
        out["trade_win_rate"], out["n_trades"] = zeros.copy(), np.zeros(m, dtype=np.int64)
    else:
        if len(trade_pnl) != m:
            raise RlopsError(f"trade_pnl: {len(trade_pnl)} PnL arrays for {m} series")
        pnls = [np.asarray(p, dtype=np.float64).ravel() for p in trade_pnl]
        counts = np.array([len(p) for p in pnls], dtype=np.int64)
        flat = np.concatenate(pnls) if counts.sum() else np.zeros(0)
        if not np.isfinite(flat).all():
            raise RlopsError("trade_pnl: NaN or infinite PnL")
        owner = np.repeat(np.arange(m), counts)
        trade_wins = np.bincount(owner, weights=(flat > 0).astype(np.float64), minlength=m)
        out["trade_win_rate"] = np.where(counts > 0, trade_wins / np.maximum(counts, 1), 0.0)
        out["n_trades"] = counts

    return {name: out[name] for name in METRIC_NAMES}


# --------------------------------------------------------------------------------------------------------------------
# the short set the demo prints


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
