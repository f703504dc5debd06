"""HTML reports: self-contained pages with every section and chart, PNGs on disk, and a clean headless-Chromium load."""

from __future__ import annotations

import dataclasses
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.backtest.report import write_report
from ml.backtest.result import BacktestResult, CostBreakdown
from ml.backtest.trades import TRADE_COLUMNS
from ml.data import storage

SINGLE_SECTIONS = (
    "summary", "equity", "drawdown", "worst-drawdowns", "rolling", "heatmaps", "distribution", "positions",
    "turnover", "costs", "metrics", "trades", "config",
)  # fmt: skip
SINGLE_CHARTS = (
    "equity", "equity_log", "drawdown", "rolling_sharpe", "rolling_volatility", "monthly_returns", "yearly_returns",
    "return_distribution", "positions", "turnover", "costs",
)  # fmt: skip
HOSTILE = '<script>alert("x")</script>'
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def synthetic_result(seed: int = 7, bars: int = 620, policy: str = f"ma {HOSTILE}") -> BacktestResult:
    """Two assets over ~2.5 years of business days, with trades, costs and a benchmark, from a seeded generator."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2016-01-04", periods=bars, freq="B", tz="UTC")
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.011, size=(bars, 2)), axis=0))
    weights = np.where(rng.random((bars, 2)) < 0.97, 0.0, 1.0)
    weights = pd.DataFrame(weights).replace(0.0, np.nan).ffill().fillna(0.0).to_numpy() * [0.5, -0.3]
    returns = np.concatenate([[0.0], (weights[:-1] * np.diff(prices, axis=0) / prices[:-1]).sum(axis=1)])
    equity = 100_000.0 * np.cumprod(1.0 + returns)
    bench = 100_000.0 * prices[:, 0] / prices[0, 0]
    traded = np.abs(np.diff(weights, axis=0, prepend=0.0)).sum(axis=1) * equity
    shares = weights * equity[:, None] / prices
    series = pd.DataFrame(
        {
            "equity": equity,
            "returns": returns,
            "benchmark_equity": bench,
            "cash": equity * (1 - weights.sum(axis=1)),
            "commission": traded * 5e-4,
            "slippage": traded * 2e-4,
            "borrow": np.where(weights[:, 1] < 0, 0.4, 0.0),
            "traded_value": traded,
            "gross_exposure": np.abs(weights).sum(axis=1) * equity,
            "shares_AAA": shares[:, 0],
            "shares_B&B": shares[:, 1],
            "weight_AAA": weights[:, 0],
            "weight_B&B": weights[:, 1],
        },
        index=index,
    )
    trades = pd.DataFrame(
        [
            ["AAA", "long", index[bars // 60], index[bars // 7], 500.0, 101.0, 109.5, 25.0, 10.0, 4215.0, 0.083, False],
            ["B&B", "short", index[bars // 15], index[bars // 3], 300.0, 98.0, 91.0, 15.0, 6.0, 2079.0, 0.071, False],
            ["AAA", "long", index[bars // 2], pd.NaT, 450.0, 120.0, 131.0, 27.0, 11.0, 4912.0, 0.091, True],
        ],
        columns=TRADE_COLUMNS,
    )
    metrics = {"total_return": float(equity[-1] / equity[0] - 1), "sharpe": 0.8123, "max_drawdown": -0.1831,
               "n_trades": 2, "profit_factor": float("inf"), "a_metric_the_report_has_never_seen": 12.5}  # fmt: skip
    return BacktestResult(
        policy=policy,
        policy_kind="baseline",
        dataset="synthetic",
        period="test",
        period_start=index[0].isoformat(),
        period_end=index[-1].isoformat(),
        timeseries=series,
        trades=trades,
        metrics=metrics,
        sharpe_ci=(0.1234, 1.4321),
        costs=CostBreakdown(float(series["commission"].sum()), float(series["slippage"].sum()), 12.0),
        config={"backtest": {"period": "test", "confidence": 0.9, "note": HOSTILE}, "env": {"commission_bps": 5}},
        dataset_fingerprint="f1e2d3c4b5a69788",
        checkpoint_sha256="ab" * 32,
    )


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("single")
    synthetic_result().save(str(run))
    write_report(str(run))
    return run


class Page(HTMLParser):
    """Collects section ids, chart names, resource URLs and the #report-status attributes of a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.charts: dict[str, str] = {}
        self.resources: list[str] = []
        self.status: dict[str, str] = {}
        self.visible_scale: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "section":
            self.sections.append(found["id"])
        if tag == "img" and "data-chart" in found:
            self.charts[found["data-chart"]] = found["src"]
        self.resources += [found[k] for k in ("src", "href") if k in found and tag != "a"]
        if found.get("id") == "report-status":
            self.status = found
        if "data-scale-view" in found and "hidden" not in found:
            self.visible_scale.append(found["data-scale-view"])


def test_single_report_is_self_contained_with_every_section_chart_and_png(single: Path) -> None:
    text = (single / "report.html").read_text()
    page = Page(text)
    assert page.sections == list(SINGLE_SECTIONS)
    assert sorted(page.charts) == sorted(SINGLE_CHARTS)
    assert all(src.startswith("data:image/png;base64,") for src in page.charts.values())
    # Nothing is fetched: no external src/href, no CSS url() or @import.
    assert page.resources == list(page.charts.values())
    assert not re.search(r"url\(|@import|<link\b|<iframe\b", text)
    for name in SINGLE_CHARTS:
        png = (single / "charts" / f"{name}.png").read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 5000
        assert f'href="charts/{name}.png"' in text


def test_single_report_shows_metrics_ci_config_hashes_and_trades_escaped(single: Path) -> None:
    text = (single / "report.html").read_text()
    result = BacktestResult.load(str(single))
    for name in result.metrics:
        assert f"<code>{name}</code>" in text
    assert "12.5000" in text and "∞" in text and "-18.31%" in text
    assert "90% CI [0.1234, 1.4321]" in text
    assert "f1e2d3c4b5a69788" in text and "ab" * 32 in text
    assert "&quot;commission_bps&quot;: 5" in text
    assert text.count("<tr>", text.index('id="trades"'), text.index('id="config"')) == 1 + len(result.trades)
    assert "B&amp;B" in text
    # The policy name and a config value carry a script tag; neither may reach the page as markup.
    assert HOSTILE not in text
    assert text.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") >= 2


def test_monthly_and_yearly_returns_compound_the_bars() -> None:
    from ml.backtest.report.series import monthly_table, yearly_returns, yearly_table

    result = synthetic_result()
    returns = result.returns.iloc[1:]
    stamps = pd.DatetimeIndex(returns.index)
    table = monthly_table(returns)
    january = returns[(stamps.year == 2016) & (stamps.month == 1)]
    assert table.loc[2016, 1] == pytest.approx(np.prod(1 + january.to_numpy()) - 1, rel=1e-12)
    total = np.prod(1 + yearly_returns(returns).to_numpy()) - 1
    assert total == pytest.approx(result.equity.iloc[-1] / result.equity.iloc[0] - 1, rel=1e-9)
    assert table.shape[1] == 12 and bool(np.isnan(table.to_numpy()[-1, -1]))
    # A run whose starting row falls on Dec 31 (as sp500's test split does) has no bar in that year.
    ts = result.timeseries
    shifted = dataclasses.replace(result, timeseries=ts.set_axis(pd.DatetimeIndex(ts.index).shift(-2, freq="B")))
    assert str(shifted.timeseries.index[0]).startswith("2015-12-31")
    years = yearly_table(shifted)
    assert [int(y) for y in years.columns] == [2016, 2017, 2018] and list(years.index) == [result.policy, "benchmark"]


def scope_of(text: str) -> tuple[str, str]:
    """The period and the in-/out-of-sample label of a page's header."""
    found = re.search(r'<header>.*?<div class="scope" data-scope-period="([^"]*)" data-sample="([^"]*)">', text)
    assert found, "the page's header names no period and no sample label"
    return html.unescape(found.group(1)), found.group(2)


def test_single_report_shows_its_period_the_benchmark_beside_it_the_worst_drawdowns_and_one_trade_count(
    single: Path,
) -> None:
    from ml.backtest.metrics import compute_metrics
    from ml.backtest.report.series import periods_per_year, worst_drawdowns

    text = (single / "report.html").read_text()
    result = BacktestResult.load(str(single))
    last = pd.DatetimeIndex(result.timeseries.index)[-1]
    assert scope_of(text) == (f"test period 2016-01-04 → {last:%Y-%m-%d}", "out-of-sample")
    bench = result.timeseries["benchmark_equity"].pct_change().iloc[1:].to_numpy()
    theirs = compute_metrics(bench, periods_per_year(result))
    metrics = text[text.index('id="metrics"') : text.index('id="trades"')]
    assert "<th>strategy</th><th>benchmark</th>" in metrics
    assert f'<span data-benchmark="sharpe">{theirs.sharpe:,.4f}</span>' in metrics
    assert f'<span data-benchmark="max_drawdown">{theirs.max_drawdown:.2%}</span>' in metrics
    assert '<span data-benchmark="n_trades">–</span>' in metrics  # the benchmark has no book to count
    worst = worst_drawdowns(result.equity)
    table = text[text.index('id="worst-drawdowns"') : text.index('id="rolling"')]
    assert table.count("<tr>") == 1 + 5 and f"<td>{worst['depth'][0]:.2%}</td>" in table
    assert f"<td>{worst['start'][0]:%Y-%m-%d}</td><td>{worst['trough'][0]:%Y-%m-%d}</td>" in table
    # n_trades counts closed round trips; the open one is listed under Trades and shown beside the count.
    assert result.metrics["n_trades"] == int((~result.trades["open"]).sum()) == 2
    assert '<span data-trades="n_trades">2</span><span class="ci">+1 open</span>' in text
    assert "2 closed round trip(s)" in text and "1 still open at the end" in text


def test_worst_drawdowns_count_episodes_as_the_metrics_do() -> None:
    from ml.backtest.metrics import drawdown_durations, max_drawdown
    from ml.backtest.report.series import worst_drawdowns

    index = pd.date_range("2020-01-01", periods=7, tz="UTC")
    equity = pd.Series([100.0, 110.0, 99.0, 105.0, 111.0, 90.0, 95.0], index=index)
    worst = worst_drawdowns(equity)
    assert worst["depth"].tolist() == pytest.approx([90 / 111 - 1, 99 / 110 - 1])
    assert list(worst["start"]) == [index[4], index[1]] and list(worst["trough"]) == [index[5], index[2]]
    assert pd.isna(worst["recovery"][0]) and worst["recovery"][1] == index[4]
    assert worst["bars"].tolist() == [2, 3]
    returns = equity.pct_change().iloc[1:]
    assert drawdown_durations(returns) == (2, 3) and max_drawdown(returns) == pytest.approx(90 / 111 - 1)
    assert worst_drawdowns(pd.Series([1.0, 2.0, 3.0], index=index[:3])).empty


def test_a_result_without_a_benchmark_gets_buy_and_hold_of_its_closes_or_says_it_has_none() -> None:
    from ml.backtest.report.series import in_sample, with_benchmark
    from ml.backtest.report.single import render_result

    result = synthetic_result(bars=60)
    bare = result.timeseries.drop(columns="benchmark_equity")
    aaa, bbb = np.linspace(10.0, 12.0, 60), np.linspace(20.0, 19.0, 60)
    priced = bare.assign(close_AAA=aaa, **{"close_B&B": bbb})
    derived, source = with_benchmark(dataclasses.replace(result, timeseries=priced))
    assert source == "equal-weight buy-and-hold of the result's closes, without costs"
    expected = bare["equity"].iloc[0] * (aaa / aaa[0] + bbb / bbb[0]) / 2
    np.testing.assert_allclose(derived.timeseries["benchmark_equity"].to_numpy(), expected, rtol=1e-12)
    unpriced, none = with_benchmark(dataclasses.replace(result, timeseries=bare))
    assert none == "" and "benchmark_equity" not in unpriced.timeseries.columns
    text, _ = render_result(dataclasses.replace(result, timeseries=bare, period="train"))
    assert "carries no benchmark" in text and "<th>strategy</th>" not in text
    assert scope_of(text)[1] == "in-sample"
    assert not in_sample(result) and in_sample(dataclasses.replace(result, period="train"))


# --------------------------------------------------------------------------------------------------------------------
# headless Chromium


def chromium_dump(url: str) -> tuple[str, str]:
    """Load `url` in headless Chromium; returns the DOM after the load event and the browser's stderr."""
    binary = shutil.which("chromium")
    assert binary, "Debian's chromium package is missing; `make setup` installs it"
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--dump-dom", url],
            capture_output=True, text=True, timeout=90, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def console_lines(stderr: str) -> list[str]:
    # Chromium logs every console message and uncaught exception as an INFO:CONSOLE line.
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_report_renders_in_headless_chromium_with_no_script_errors(single: Path) -> None:
    dom, stderr = chromium_dump((single / "report.html").as_uri() + "#log")
    page = Page(dom)
    assert page.status["data-state"] == "ok", page.status
    assert page.status["data-errors"] == "0"
    assert page.status["data-charts"] == page.status["data-charts-rendered"] == str(len(SINGLE_CHARTS))
    assert console_lines(stderr) == []
    # The #log link starts the equity chart in log scale, which runs the toggle's code path.
    assert page.visible_scale == ["log"]
    assert 'data-equity-scale="log"' in dom


def test_headless_check_catches_a_script_error_and_a_broken_chart(single: Path, tmp_path: Path) -> None:
    text = (single / "report.html").read_text()
    broken = text.replace("</main>", "</main><script>notDefinedAnywhere();</script>", 1)
    broken = broken.replace('src="data:image/png;base64,', 'src="data:image/png;base64,AAAA', 1)
    (tmp_path / "report.html").write_text(broken)
    dom, stderr = chromium_dump((tmp_path / "report.html").as_uri())
    page = Page(dom)
    assert page.status["data-state"] == "error"
    assert int(page.status["data-charts-rendered"]) == len(SINGLE_CHARTS) - 1
    assert "notDefinedAnywhere is not defined" in dom and "chart did not render: equity" in dom
    assert any("notDefinedAnywhere" in line for line in console_lines(stderr))


# --------------------------------------------------------------------------------------------------------------------
# batch


def write_batch(root: Path) -> None:
    from ml.backtest.batch import BatchResult

    rows = []
    for cell, sharpe in enumerate([1.1, 0.4, -0.2]):
        result = synthetic_result(seed=cell, bars=300, policy=f"baseline:p{cell}")
        if cell == 0:  # one saved cell is enough to prove the links; the others show how to render theirs
            result.save(str(root / "cells" / f"{cell:04d}"))
        rows.append({"cell": cell, "policy": result.policy, "dataset": "synthetic", "period": "test", "env": "{}",
                     "params": "{}", "status": "ok", "error": "", "sharpe_ci_low": sharpe - 0.5,
                     "sharpe_ci_high": sharpe + 0.5, "sharpe": sharpe, "total_return": sharpe / 10})  # fmt: skip
    rows.append({"cell": 3, "policy": "runs/missing.pt", "dataset": "synthetic", "period": "test", "env": "{}",
                 "params": '{"fast": 5}', "status": "failed", "error": f"RlopsError: runs/missing.pt: no such file "
                 f"{HOSTILE}", "sharpe_ci_low": np.nan, "sharpe_ci_high": np.nan, "sharpe": np.nan,
                 "total_return": np.nan})  # fmt: skip
    board = pd.DataFrame(rows)
    board.insert(0, "rank", range(1, len(board) + 1))
    BatchResult(board, "sharpe", 0.42, 3).save(str(root))
    (root / "grid.json").write_text(json.dumps({"policies": ["baseline:p0"], "metric": "sharpe"}))


def test_batch_report_ranks_cells_explains_deflated_sharpe_and_shows_failures(tmp_path: Path) -> None:
    write_batch(tmp_path)
    target = write_report(str(tmp_path), cells=True)
    assert target == str(tmp_path / "report.html")
    text = Path(target).read_text()
    page = Page(text)
    assert page.sections == ["summary", "deflated-sharpe", "leaderboard", "comparison", "failed", "config"]
    assert list(page.charts) == ["leaderboard"]
    assert (tmp_path / "charts" / "leaderboard.png").read_bytes().startswith(PNG_MAGIC)
    failed = text[text.index('id="failed"') :]
    assert "RlopsError: runs/missing.pt: no such file" in failed and HOSTILE not in text
    assert "42.00%" in text and "could well be luck" in text and "3 trials" in text
    assert 'href="cells/0000/report.html"' in text and (tmp_path / "cells" / "0000" / "report.html").is_file()
    assert "cells/0001/report.html" not in text
    leaderboard = text[text.index('id="leaderboard"') : text.index('id="comparison"')]
    assert leaderboard.index("baseline:p0") < leaderboard.index("baseline:p1") < leaderboard.index("runs/missing.pt")
    last = pd.DatetimeIndex(synthetic_result(seed=0, bars=300).timeseries.index)[-1]
    assert scope_of(text) == (f"test period 2016-01-04 → {last:%Y-%m-%d}", "out-of-sample")


@pytest.fixture
def bucket(s3_bucket_factory: Callable[[str], str]) -> str:
    return s3_bucket_factory("reports")


def test_report_of_an_s3_prefix_is_written_back_to_it(bucket: str) -> None:
    from rlops_core.errors import RlopsError

    prefix = f"{bucket}/backtests/one"
    synthetic_result(bars=60).save(prefix)
    assert write_report(prefix + "/") == f"{prefix}/report.html"
    assert Page(storage.read_bytes(f"{prefix}/report.html").decode()).sections == list(SINGLE_SECTIONS)
    assert storage.read_bytes(f"{prefix}/charts/monthly_returns.png").startswith(PNG_MAGIC)
    with pytest.raises(RlopsError, match="holds neither a backtest result"):
        write_report(f"{bucket}/backtests/none")


# --------------------------------------------------------------------------------------------------------------------
# bad input and the CLI


def rlops_report(*args: str) -> subprocess.CompletedProcess[str]:
    rlops = Path(sys.executable).with_name("rlops")
    return subprocess.run([str(rlops), "report", *args], capture_output=True, text=True, timeout=120, check=False)


def test_rlops_report_on_a_missing_folder_is_one_line_and_exit_1(tmp_path: Path) -> None:
    done = rlops_report(str(tmp_path / "nowhere"))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"error: {tmp_path / 'nowhere'}: no such folder"]
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("nothing", "holds neither a backtest result (result.json) nor a batch (batch.json)"),
        ("json", "result.json is not valid JSON"),
        ("parquet", "cannot read the backtest result"),
        ("batch", "batch.json: not a batch summary"),
    ],
)
def test_write_report_names_what_is_wrong_with_a_run_dir(tmp_path: Path, damage: str, message: str) -> None:
    from rlops_core.errors import RlopsError

    if damage == "batch":
        (tmp_path / "batch.json").write_text('{"metric": "sharpe"}')
    elif damage != "nothing":
        synthetic_result(bars=40).save(str(tmp_path))
        name = "result.json" if damage == "json" else "timeseries.parquet"
        (tmp_path / name).write_bytes(b"{ not what it should be")
    with pytest.raises(RlopsError, match=re.escape(message)):
        write_report(str(tmp_path))


def test_rlops_report_on_a_real_backtest_prints_the_report_path(tmp_path: Path) -> None:
    from ml.backtest.engine import backtest
    from ml.backtest.report.page import span_text
    from ml.backtest.report.series import worst_drawdowns

    result = backtest("baseline:buy_and_hold", "sp500")
    result.save(str(tmp_path))
    done = rlops_report(str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "report.html")
    text = (tmp_path / "report.html").read_text()
    assert Page(text).sections == list(SINGLE_SECTIONS)
    assert all(f"<code>{name}</code>" in text for name in result.metrics)
    low, high = result.sharpe_ci
    assert f"95% CI [{low:,.4f}, {high:,.4f}]" in text
    assert result.dataset_fingerprint in text and "buy_and_hold on sp500 (test)" in text
    assert sorted(p.stem for p in (tmp_path / "charts").glob("*.png")) == sorted(SINGLE_CHARTS)
    # Buy-and-hold holds one trade open to the end: n_trades (closed ones) is 0 on every part of the page.
    closed = int((~result.trades["open"]).sum())
    assert result.metrics["n_trades"] == closed and f'<span data-trades="n_trades">{closed}</span>' in text
    worst = worst_drawdowns(result.equity)
    assert worst["depth"][0] == pytest.approx(result.metrics["max_drawdown"], rel=1e-12)
    assert worst["bars"][0] == result.metrics["max_drawdown_duration"]
    assert scope_of(text) == (f"test period {span_text(result.period_start, result.period_end)}", "out-of-sample")
