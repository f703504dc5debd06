"""Metrics: every figure empyrical-reloaded or quantstats also computes agrees to 1e-9 relative on the same series
(with the stated conversion where our convention differs on purpose); hand-computed cases for the rest; the
many-series kernels equal the single-series result; degenerate series give documented numbers, bad input a named
error."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from ml.backtest import metrics as mt
from ml.backtest.metrics import Metrics, compute_metrics, compute_metrics_many
from rlops_core.errors import RlopsError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import empyrical as ep
    import quantstats as qs

PPY = 252
RF = 0.03  # annual
RF_P = (1 + RF) ** (1 / PPY) - 1  # what empyrical takes: a per-period rate
REL = 1e-9


@contextmanager
def quiet() -> Iterator[None]:
    """The libraries warn about their own internals (deprecations, empty slices); those are not our concern here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def close(ours: float, theirs: float, what: str) -> None:
    assert math.isclose(ours, float(theirs), rel_tol=REL, abs_tol=1e-15), f"{what}: ours {ours!r}, library {theirs!r}"


def _recovers(rng: np.random.Generator) -> np.ndarray:
    """Up, a 30% slide, then a rally past the old peak: the drawdown recovers."""
    trend = np.concatenate([np.full(300, 0.001), np.full(200, -0.0018), np.full(500, 0.0015)])
    return trend + rng.normal(0, 0.006, len(trend))


def _never_recovers(rng: np.random.Generator) -> np.ndarray:
    """A climb, then a crash the series never makes back."""
    trend = np.concatenate([np.full(400, 0.0008), np.full(150, -0.004), np.full(250, 0.0002)])
    return trend + rng.normal(0, 0.008, len(trend))


def _fat_tails(rng: np.random.Generator) -> np.ndarray:
    return 0.0004 + 0.007 * rng.standard_t(3, 1500)


def _sparse(rng: np.random.Generator) -> np.ndarray:
    """A strategy flat a third of the time: zero-return bars are neither wins nor losses."""
    values = rng.normal(0.0005, 0.01, 1200)
    values[rng.random(1200) < 0.33] = 0.0
    return values


SERIES: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "recovers": _recovers,
    "never_recovers": _never_recovers,
    "fat_tails": _fat_tails,
    "sparse": _sparse,
}


@pytest.fixture(params=sorted(SERIES), name="case")
def _case(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray, pd.Series, pd.Series]:
    returns = _seeded(request.param)
    rng = np.random.default_rng(99)
    benchmark = 0.6 * returns + rng.normal(0.0002, 0.009, len(returns))
    index = pd.bdate_range("2012-01-02", periods=len(returns))
    return returns, benchmark, pd.Series(returns, index=index), pd.Series(benchmark, index=index)


def _seeded(name: str) -> np.ndarray:
    return SERIES[name](np.random.default_rng(sorted(SERIES).index(name) + 11))


def test_the_fixtures_cover_a_recovered_and_an_unrecovered_drawdown() -> None:
    for name, recovers in (("recovers", True), ("never_recovers", False)):
        r = _seeded(name)
        m = compute_metrics(r, PPY)
        curve = np.concatenate([[1.0], np.cumprod(1 + r)])
        peaks = np.maximum.accumulate(curve)
        trough = int(np.argmin(curve / peaks))
        assert m.max_drawdown < -0.2, name
        assert bool(curve[trough:].max() >= peaks[trough]) is recovers, name
        if not recovers:
            # unrecovered: the deepest drawdown runs from its peak bar to the last bar
            assert m.max_drawdown_duration == m.n_periods - int(np.argmax(curve[: trough + 1]))


def test_return_and_risk_metrics_match_empyrical_and_quantstats(case: Any) -> None:
    r, _, s, _ = case
    m = compute_metrics(r, PPY, risk_free=RF)
    with quiet():
        close(m.total_return, ep.cum_returns_final(r), "total return / empyrical")
        close(m.total_return, qs.stats.comp(s), "total return / quantstats")
        close(m.cagr, ep.annual_return(r, annualization=PPY), "CAGR / empyrical")
        close(m.cagr, qs.stats.cagr(s, periods=PPY), "CAGR / quantstats")
        close(m.annual_volatility, ep.annual_volatility(r, annualization=PPY), "volatility / empyrical")
        close(m.annual_volatility, qs.stats.volatility(s, periods=PPY), "volatility / quantstats")
        close(m.sharpe, ep.sharpe_ratio(r, RF_P, annualization=PPY), "Sharpe / empyrical")
        close(m.sharpe, qs.stats.sharpe(s, rf=RF, periods=PPY), "Sharpe / quantstats")
        close(m.sortino, ep.sortino_ratio(r, required_return=RF_P, annualization=PPY), "Sortino / empyrical")
        close(m.sortino, qs.stats.sortino(s, rf=RF, periods=PPY), "Sortino / quantstats")
        close(m.max_drawdown, ep.max_drawdown(r), "max drawdown / empyrical")
        close(m.max_drawdown, qs.stats.max_drawdown(s), "max drawdown / quantstats")
        close(m.calmar, ep.calmar_ratio(r, annualization=PPY), "Calmar / empyrical")
        close(m.calmar, qs.stats.calmar(s, periods=PPY), "Calmar / quantstats")


def test_distribution_metrics_match_empyrical_quantstats_and_scipy(case: Any) -> None:
    r, _, s, _ = case
    m = compute_metrics(r, PPY)
    with quiet():
        close(m.win_rate, qs.stats.win_rate(s), "win rate / quantstats")
        close(m.profit_factor, qs.stats.profit_factor(s), "profit factor / quantstats")
        close(m.avg_win, qs.stats.avg_win(s), "average win / quantstats")
        close(m.avg_loss, qs.stats.avg_loss(s), "average loss / quantstats")
        close(m.var_95, ep.value_at_risk(r, cutoff=0.05), "VaR / empyrical")
        close(m.cvar_95, ep.conditional_value_at_risk(r, cutoff=0.05), "CVaR / empyrical")
        close(m.cvar_95, qs.stats.cvar(s, confidence=0.95, method="historical"), "CVaR / quantstats historical")
        close(m.tail_ratio, ep.tail_ratio(r), "tail ratio / empyrical")
        close(m.tail_ratio, qs.stats.tail_ratio(s), "tail ratio / quantstats")
        close(m.skew, qs.stats.skew(s), "skew / quantstats")
        close(m.kurtosis, qs.stats.kurtosis(s), "excess kurtosis / quantstats")
    close(m.skew, scipy.stats.skew(r, bias=False), "skew / scipy bias-corrected")
    close(m.kurtosis, scipy.stats.kurtosis(r, fisher=True, bias=False), "excess kurtosis / scipy bias-corrected")


def test_alpha_beta_match_quantstats_and_empyrical_after_compounding(case: Any) -> None:
    r, b, s, bs = case
    plain = compute_metrics(r, PPY, benchmark=b)
    with quiet():
        greeks = qs.stats.greeks(s, bs, periods=PPY)
    close(plain.beta, greeks["beta"], "beta / quantstats")
    close(plain.alpha, greeks["alpha"], "alpha / quantstats (arithmetic, no risk-free rate)")

    with_rf = compute_metrics(r, PPY, risk_free=RF, benchmark=b)
    with quiet():
        ep_alpha, ep_beta = ep.alpha_beta(r, b, risk_free=RF_P, annualization=PPY)
    close(with_rf.beta, ep_beta, "beta / empyrical")
    # empyrical compounds the mean per-period alpha over a year; ours annualises it linearly.
    close((1 + with_rf.alpha / PPY) ** PPY - 1, ep_alpha, "alpha / empyrical, compounded")


def test_exposure_matches_quantstats_after_its_rounding_up(case: Any) -> None:
    """quantstats infers exposure from non-zero returns and rounds up to a whole percent; we take positions."""
    r, _, s, _ = case
    ours = compute_metrics(r, PPY, positions=(r != 0).astype(float)).exposure
    with quiet():
        close(math.ceil(ours * 100) / 100, qs.stats.exposure(s), "exposure / quantstats")


def test_probabilistic_sharpe_matches_quantstats(case: Any) -> None:
    from ml.backtest.stats import probabilistic_sharpe_ratio

    r, _, s, _ = case
    m = compute_metrics(r, PPY)
    ours = probabilistic_sharpe_ratio(m.sharpe / math.sqrt(PPY), m.n_periods, m.skew, m.kurtosis)
    with quiet():
        close(ours, qs.stats.probabilistic_sharpe_ratio(s), "PSR / quantstats")


def test_single_metric_functions_agree_with_the_full_set(case: Any) -> None:
    r, b, _, _ = case
    m = compute_metrics(r, PPY, risk_free=RF, benchmark=b)
    pairs = {
        "total_return": mt.total_return(r),
        "cagr": mt.cagr(r, PPY),
        "annual_volatility": mt.annual_volatility(r, PPY),
        "sharpe": mt.sharpe(r, PPY, RF),
        "sortino": mt.sortino(r, PPY, RF),
        "calmar": mt.calmar(r, PPY),
        "max_drawdown": mt.max_drawdown(r),
        "win_rate": mt.win_rate(r),
        "profit_factor": mt.profit_factor(r),
        "avg_win": mt.avg_win(r),
        "avg_loss": mt.avg_loss(r),
        "var_95": mt.value_at_risk(r),
        "cvar_95": mt.conditional_value_at_risk(r),
        "tail_ratio": mt.tail_ratio(r),
        "skew": mt.skew(r),
        "kurtosis": mt.kurtosis(r),
        "alpha": mt.alpha_beta(r, b, PPY, RF)[0],
        "beta": mt.alpha_beta(r, b, PPY, RF)[1],
    }
    for name, value in pairs.items():
        close(value, getattr(m, name), name)
    assert mt.drawdown_durations(r) == (m.max_drawdown_duration, m.longest_drawdown_duration)


def test_drawdown_durations_by_hand() -> None:
    # curve: 1, 1.1 (peak, bar 1), 0.55, 1.1 (recovered, bar 3), 1.21 (peak, bar 4), 1.089, 0.9801, 0.9801 (end)
    r = np.array([0.1, -0.5, 1.0, 0.1, -0.1, -0.1, 0.0])
    m = compute_metrics(r, PPY)
    assert m.max_drawdown == pytest.approx(-0.5)
    assert m.max_drawdown_duration == 2  # bar 1 to bar 3: the deepest fall recovered
    assert m.longest_drawdown_duration == 3  # bar 4 to the end (bar 7): shallower but longer, not recovered
    assert mt.drawdown_durations(np.array([0.01, 0.02, 0.0, 0.01])) == (0, 0)
    assert mt.drawdown_durations(np.array([-0.1, 0.05])) == (2, 2)  # from the start (bar 0), never recovered


def test_exposure_turnover_and_trades_by_hand() -> None:
    r = np.array([0.0, 0.01, -0.02, 0.0, 0.03])
    m = compute_metrics(
        r,
        PPY,
        positions=np.array([0.0, 1.0, 1.0, 0.0, -1.0]),
        traded_value=np.array([100.0, 0.0, 50.0, 50.0, 0.0]),
        nav=np.array([1000.0, 1000.0, 980.0, 960.0, 1060.0]),
        trade_pnl=np.array([10.0, -5.0, 0.0, 3.0]),
    )
    assert m.exposure == pytest.approx(3 / 5)
    assert m.turnover == pytest.approx(40.0 / 1000.0)  # mean traded 200/5 = 40 over mean NAV 5000/5 = 1000
    assert m.turnover_annual == pytest.approx(40.0 / 1000.0 * PPY)
    assert m.trade_win_rate == pytest.approx(0.5)  # 2 of 4; break-even is not a win
    assert m.n_trades == 4
    multi_asset = np.array([[0, 0], [1, 0], [0, -2], [0, 0], [0, 0]], dtype=float)
    assert mt.exposure(multi_asset) == pytest.approx(2 / 5)
    assert mt.turnover([0.0, 0.0], [0.0, 0.0], PPY) == (0.0, 0.0)
    assert mt.turnover([5.0, 0.0], [10.0, -30.0], PPY) == (math.inf, math.inf)  # ruined: no capital to trade
    assert mt.trade_win_rate([]) == 0.0
    assert compute_metrics(r, PPY, trade_pnl=np.array([])).n_trades == 0


def test_degenerate_series_give_documented_values_never_nan() -> None:
    flat = compute_metrics(np.zeros(50), PPY, benchmark=np.zeros(50), trade_pnl=np.array([]))
    assert all(not math.isnan(v) for v in flat.as_dict().values())
    assert (flat.sharpe, flat.sortino, flat.calmar, flat.profit_factor, flat.tail_ratio) == (0, 0, 0, 0, 0)
    assert (flat.win_rate, flat.avg_win, flat.avg_loss, flat.skew, flat.kurtosis, flat.beta) == (0, 0, 0, 0, 0, 0)

    only_gains = compute_metrics(np.full(40, 0.001), PPY)
    assert only_gains.sharpe == 0.0  # zero variance: Sharpe is 0 by convention, not infinite
    assert only_gains.sortino == math.inf
    assert only_gains.calmar == math.inf
    assert only_gains.profit_factor == math.inf
    assert only_gains.max_drawdown == 0.0
    assert only_gains.win_rate == 1.0

    wiped_out = compute_metrics(np.array([0.1, -1.0, 0.0]), PPY)
    assert wiped_out.cagr == -1.0
    assert wiped_out.max_drawdown == -1.0

    short = compute_metrics(np.array([0.01, -0.02, 0.03]), PPY)
    assert short.kurtosis == 0.0  # fewer than 4 periods: no kurtosis estimate


def test_as_dict_lists_every_field_with_plain_types() -> None:
    m = compute_metrics(np.random.default_rng(0).normal(0, 0.01, 100), PPY)
    d = m.as_dict()
    assert list(d) == list(mt.METRIC_NAMES)
    assert all(type(d[name]) is int for name in mt.INT_FIELDS)
    assert all(type(v) is float for k, v in d.items() if k not in mt.INT_FIELDS)
    assert d["periods_per_year"] == PPY


def test_many_series_equal_the_single_series_result_column_by_column() -> None:
    rng = np.random.default_rng(5)
    n, k, assets = 400, 6, 2
    returns = rng.normal(0.0003, 0.01, (n, k))
    returns[:, 1] = 0.0  # a flat series among them
    returns[rng.random((n, k)) < 0.1] = 0.0
    benchmark = rng.normal(0.0002, 0.01, (n, k))
    positions = rng.integers(-1, 2, (n, k, assets)).astype(float)
    traded = rng.random((n, k)) * 100
    nav = 1000 + rng.random((n, k)) * 100
    pnls = [rng.normal(0, 1, size) for size in (0, 3, 10, 1, 7, 2)]
    table = compute_metrics_many(
        returns,
        PPY,
        RF,
        benchmark=benchmark,
        positions=positions,
        traded_value=traded,
        nav=nav,
        trade_pnl=pnls,
    )
    rows = compute_metrics_many(
        returns.T,
        PPY,
        RF,
        benchmark=benchmark.T,
        positions=positions.transpose(1, 0, 2),
        traded_value=traded.T,
        nav=nav.T,
        trade_pnl=pnls,
        axis=1,
    )
    assert list(table) == list(mt.METRIC_NAMES)
    for i in range(k):
        single = compute_metrics(
            returns[:, i],
            PPY,
            RF,
            benchmark=benchmark[:, i],
            positions=positions[:, i],
            traded_value=traded[:, i],
            nav=nav[:, i],
            trade_pnl=pnls[i],
        )
        for name, value in single.as_dict().items():
            for label, source in (("axis 0", table), ("axis 1", rows)):
                assert math.isclose(source[name][i], value, rel_tol=1e-12, abs_tol=1e-15), (name, i, label)


def test_a_shared_benchmark_broadcasts_to_every_series() -> None:
    rng = np.random.default_rng(8)
    returns = rng.normal(0, 0.01, (300, 3))
    bench = rng.normal(0, 0.01, 300)
    table = compute_metrics_many(returns, PPY, benchmark=bench)
    for i in range(3):
        assert table["beta"][i] == pytest.approx(compute_metrics(returns[:, i], PPY, benchmark=bench).beta, rel=1e-12)


def test_headline_keeps_working_for_the_demo() -> None:
    equity = np.array([100.0, 101.0, 99.0, 103.0, 104.0])
    h = mt.headline(equity, PPY)
    r = mt.returns_from_equity(equity)
    full = compute_metrics(r, PPY)
    assert h.as_dict() == {
        "total_return": full.total_return,
        "cagr": full.cagr,
        "annual_volatility": full.annual_volatility,
        "sharpe": full.sharpe,
        "max_drawdown": full.max_drawdown,
    }


def test_risk_free_rate_is_compounded_down_to_a_period() -> None:
    assert mt.risk_free_per_period(RF, PPY) == pytest.approx(RF_P, rel=1e-15)
    assert (1 + mt.risk_free_per_period(0.05, 12)) ** 12 == pytest.approx(1.05, rel=1e-14)


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda: compute_metrics([0.01, float("nan"), 0.02], PPY), "returns"),
        (lambda: compute_metrics([0.01, float("inf"), 0.02], PPY), "returns"),
        (lambda: compute_metrics([], PPY), "returns"),
        (lambda: compute_metrics([0.01], PPY), "returns"),
        (lambda: compute_metrics([[0.01, 0.02], [0.0, 0.1]], PPY), "returns"),
        (lambda: compute_metrics([0.01, 0.02, 0.03], PPY, benchmark=[0.01, 0.02]), "benchmark"),
        (lambda: compute_metrics([0.01, 0.02], PPY, benchmark=[0.01, float("nan")]), "benchmark"),
        (lambda: compute_metrics([0.01, 0.02], PPY, positions=[1.0, 1.0, 1.0]), "positions"),
        (lambda: compute_metrics([0.01, 0.02], PPY, traded_value=[1.0, 2.0]), "nav"),
        (lambda: compute_metrics([0.01, 0.02], PPY, traded_value=[-1.0, 2.0], nav=[1, 1]), "traded_value"),
        (lambda: compute_metrics([0.01, 0.02], PPY, traded_value=[1.0, 2.0], nav=[1.0]), "nav"),
        (lambda: compute_metrics([0.01, 0.02], PPY, traded_value=[1.0, 2.0], nav=[1.0, math.nan]), "nav"),
        (lambda: compute_metrics([0.01, 0.02], PPY, trade_pnl=[1.0, float("nan")]), "trade_pnl"),
        (lambda: compute_metrics([0.01, 0.02], 0), "periods_per_year"),
        (lambda: compute_metrics([0.01, 0.02], PPY, risk_free=-1.5), "risk_free"),
        (lambda: compute_metrics_many(np.zeros(5), PPY), "returns"),
        (lambda: compute_metrics_many(np.zeros((5, 2)), PPY, axis=2), "axis"),
        (lambda: compute_metrics_many(np.zeros((5, 2)), PPY, trade_pnl=[[1.0]]), "trade_pnl"),
        (lambda: compute_metrics_many(np.zeros((5, 2)), PPY, benchmark=np.zeros((5, 3))), "benchmark"),
        (lambda: mt.turnover([1.0, 2.0], [1.0, 2.0, 3.0], PPY), "nav"),
        (lambda: mt.alpha_beta([0.01, 0.02], ["a", "b"], PPY), "benchmark"),
    ],
)
def test_bad_input_raises_an_error_naming_the_argument(call: Callable[[], object], named: str) -> None:
    with pytest.raises(RlopsError, match=named):
        call()


def test_metrics_is_a_frozen_dataclass() -> None:
    m = compute_metrics([0.01, -0.01, 0.02], PPY)
    assert isinstance(m, Metrics)
    with pytest.raises(AttributeError):
        m.sharpe = 1.0  # type: ignore[misc]


def test_a_backtest_reports_turnover_per_net_asset_value() -> None:
    from ml.backtest.engine import BacktestConfig, backtest

    result = backtest("baseline:buy_and_hold", "sp500", BacktestConfig(bootstrap_samples=10))
    ts = result.timeseries
    traded, equity = ts["traded_value"].to_numpy(), ts["equity"].to_numpy()
    # Buy and hold buys the whole book on the first bar (then only tops up): about one NAV traded over the period.
    assert traded[1] == pytest.approx(equity[0], rel=0.01)
    n = len(ts) - 1
    assert result.metrics["turnover"] == pytest.approx(traded[1:].sum() / n / equity[:-1].mean(), rel=1e-12)
    assert result.metrics["turnover"] * n * equity[:-1].mean() == pytest.approx(traded.sum(), rel=1e-12)
    assert traded[1] / traded.sum() > 0.9
