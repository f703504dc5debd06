"""The research pipeline: the whole chain in smoke mode, reuse of finished stages, and bad input."""

from __future__ import annotations

import json
import re
import shutil
from html import escape as html_escape
from html import unescape as html_unescape
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from ml.backtest.report.page import span_text
from ml.backtest.result import BacktestResult
from ml.pipeline.config import PipelineConfig
from ml.pipeline.runner import run_pipeline, run_stage
from ml.pipeline.stages import stage_named, write_stage
from rlops_core import memory
from rlops_core.errors import RlopsError
from tests.backtest.test_backtest_report import Page, chromium_dump, console_lines, scope_of

REPO_BANK = Path(__file__).resolve().parents[2] / "memory_bank"


@pytest.fixture
def bank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "memory_bank"
    shutil.copytree(REPO_BANK, copy, ignore=shutil.ignore_patterns(".lock"))
    monkeypatch.setenv("RLOPS_MEMORY_BANK", str(copy))
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    return copy


@pytest.mark.slow
def test_smoke_pipeline_end_to_end_is_consistent_and_reruns_from_cache(tmp_path: Path, bank: Path) -> None:
    config = PipelineConfig(out=str(tmp_path / "run"), smoke=True, samples=2, iterations=2, memory_bank=str(bank))
    runs = run_pipeline(config, say=lambda _: None)
    assert [r.stage for r in runs] == ["data", "tune", "train", "backtest", "report", "record"]
    assert not any(r.skipped for r in runs)
    out = tmp_path / "run"
    board = pd.read_parquet(out / "backtest" / "leaderboard.parquet")
    assert len(board) == 2 + len(config.baselines)
    assert (board["status"] == "ok").all()
    assert board["period"].eq("test").all()
    html = (out / "report" / "report.html").read_text()
    section = html[html.index('id="leaderboard"') :]
    for sharpe in board["sharpe"]:
        assert f"{sharpe:.4f}" in section  # the report shows the leaderboard's own test-split Sharpe
    check_research_report(out, {r.stage: r.result for r in runs}, html)
    entries = memory.read_entries(bank, memory.EntryKind.PROGRESS)
    latest = entries[-1]
    best = runs[3].result["leaderboard"][0]  # type: ignore[index]
    assert latest.title.endswith(f"(Sharpe {best['sharpe']:.2f})")
    assert f"Sharpe {board['sharpe'].iloc[0]:.3f}" in latest.body
    for algo in ("ppo", "a3c"):
        assert (out / "tune" / algo / "best_config.yaml").exists()
        tuned = json.loads((out / "tune" / "stage.json").read_text())["result"][algo]
        assert tuned["trials"] == 2
        assert len(tuned["trial_sharpes"]) == 2  # each trial's validation Sharpe at its best report
        assert tuned["overfitting"] == {"pbo": None, "reason": "only 2 configuration(s); PBO needs at least 4"}
    # The deflated Sharpe counts every configuration evaluated on the way: 2 + 2 tuning trials, then the cells.
    tested = runs[3].result
    assert tested["n_trials"] == 4 + len(board) and tested["deflation"]["tuning_trials"] == 4
    assert f"(N = {tested['n_trials']}, Sharpe variance " in latest.body
    assert f": 4 tuning trials + {len(board)} cells)" in latest.body
    assert "Overfitting: tuning ppo: no PBO: only 2 configuration(s)" in latest.body
    assert "nan" not in latest.body.lower()
    again = run_pipeline(config, say=lambda _: None)
    assert all(r.skipped for r in again)
    assert len(memory.read_entries(bank, memory.EntryKind.PROGRESS)) == len(entries)


def check_research_report(out: Path, results: dict[str, Any], html: str) -> None:
    """The research report holds every section, agrees with the stages' own numbers, and loads cleanly in Chromium."""
    page = Page(html)
    assert page.sections == ["summary", "data", "tuning", "equity", "leaderboard", "deflated-sharpe", "config"]
    assert list(page.charts) == ["test_equity"] and (out / "report" / "charts" / "test_equity.png").is_file()
    assert results["data"]["fingerprint"] in html
    # The test split's dates and bars are the ones every cell was scored on; the header says so.
    cell = BacktestResult.load(str(out / "report" / "cells" / "0000"))
    test_row = re.search(r'data-part="test">test</span></td><td>([^<]*)</td><td>([\d,]+)</td>', html)
    assert test_row and test_row.group(2).replace(",", "") == str(len(cell.timeseries))
    assert scope_of(html) == (f"test period {html_unescape(test_row.group(1))}", "out-of-sample")
    assert test_row.group(1) == html_escape(span_text(cell.period_start, cell.period_end))
    # Each algorithm's tuning leaderboard lists its trials on validation, the chosen one first.
    for algo, tuned in results["tune"].items():
        trials = pd.read_parquet(Path(tuned["experiment"]) / "leaderboard.parquet")
        table = html[html.index(f'data-algo="{algo}"') :]
        assert all(str(trial) in table for trial in trials["trial_id"])
        assert f"{tuned['best_score']:,.4f}" in table[: table.index("</table>")]
    assert html.count('data-chosen="true"') == len(results["tune"])
    board = pd.read_parquet(out / "report" / "leaderboard.parquet")
    for record in board.to_dict("records"):
        folder = out / "report" / "cells" / f"{int(record['cell']):04d}"
        assert f'href="cells/{int(record["cell"]):04d}/report.html"' in html and (folder / "report.html").is_file()
        # One trade count everywhere: the leaderboard's, the metrics', the trades table's closed rows, the cell page's.
        result = BacktestResult.load(str(folder))
        closed = int((~result.trades["open"]).sum())
        assert record["n_trades"] == result.metrics["n_trades"] == closed
        assert f'<span data-trades="n_trades">{closed:,}</span>' in (folder / "report.html").read_text()
    n = results["backtest"].get("n_trials", results["backtest"]["trials"])
    assert f"<span data-n-trials>{n}</span>" in html
    assert f"<span data-dsr>{results['backtest']['deflated_sharpe']:.2%}</span>" in html
    dom, stderr = chromium_dump((out / "report" / "report.html").as_uri())
    status = Page(dom).status
    assert status["data-state"] == "ok" and status["data-charts-rendered"] == "1", status
    assert console_lines(stderr) == []


def test_data_stage_reuse_force_and_out_of_order_stages(tmp_path: Path) -> None:
    config = PipelineConfig(out=str(tmp_path / "run"), smoke=True)
    first = run_pipeline(config, say=lambda _: None, stop_after="data")
    assert not first[0].skipped
    assert (tmp_path / "run" / "data" / "store" / "manifest.json").exists()
    assert run_pipeline(config, say=lambda _: None, stop_after="data")[0].skipped
    assert not run_pipeline(config, say=lambda _: None, force=True, stop_after="data")[0].skipped
    with pytest.raises(RlopsError, match=r"stage train needs the output of stage tune at .*: run stage tune first"):
        run_stage(
            stage_named("train"),
            config,
            {"data": str(tmp_path / "run" / "data"), "tune": str(tmp_path / "run" / "tune")},
            str(tmp_path / "run" / "train"),
        )
    assert (tmp_path / "run" / "data" / "stage.json").exists()  # a failed stage keeps earlier outputs
    with pytest.raises(RlopsError, match="stage backtest needs --input for data, train"):
        run_stage(stage_named("backtest"), config, {}, str(tmp_path / "x"))
    with pytest.raises(RlopsError, match="unknown stage 'deploy'"):
        stage_named("deploy")


def finished_inputs(root: Path) -> dict[str, str]:
    """Finished data, tune, backtest and report stages as the record stage reads them (their stage.json only)."""
    results: dict[str, dict[str, object]] = {
        "data": {"fingerprint": "sha256:" + "ab" * 32},
        "tune": {"ppo": {"trials": 2, "best_score": 0.41}},
        "backtest": {
            "leaderboard": [
                {"rank": 1, "policy": "ppo", "sharpe": 0.62, "total_return": 0.21, "max_drawdown": -0.12},
                {"rank": 2, "policy": "buy_and_hold", "sharpe": 0.59, "total_return": 0.23, "max_drawdown": -0.2},
            ],
            "trials": 2,
            "deflated_sharpe": 0.33,
        },
        "report": {"report": str(root / "report" / "report.html")},
    }
    for name, result in results.items():
        write_stage(str(root / name), stage_named(name), f"sha256:{name}", {}, result)
    return {name: str(root / name) for name in results}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name != ".lock"}


def test_record_stage_by_default_writes_its_entry_to_the_output_and_touches_no_bank(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every bank the old default would have found: the repository's, one named by the environment, one in the cwd.
    named, nearest = tmp_path / "named" / "memory_bank", tmp_path / "cwd" / "memory_bank"
    for folder in (named, nearest):
        shutil.copytree(REPO_BANK, folder, ignore=shutil.ignore_patterns(".lock"))
    monkeypatch.setenv("RLOPS_MEMORY_BANK", str(named))
    monkeypatch.chdir(nearest.parent)
    before = {folder: snapshot(folder) for folder in (REPO_BANK, named, nearest)}
    run = run_stage(stage_named("record"), PipelineConfig(), finished_inputs(tmp_path / "run"), str(tmp_path / "rec"))
    assert not run.skipped and "bank" not in run.result
    entry = memory.parse_entry_file((tmp_path / "rec" / memory.ENTRY_FILE).read_text(), "entry")
    assert entry.title == "Pipeline run on sp500: best on test is ppo (Sharpe 0.62)"
    assert "1. ppo: Sharpe 0.620, total return +21.00%, max drawdown -12.00%" in entry.body
    assert {folder: snapshot(folder) for folder in (REPO_BANK, named, nearest)} == before


def test_record_stage_appends_to_the_bank_it_is_given(tmp_path: Path) -> None:
    bank = tmp_path / "memory_bank"
    shutil.copytree(REPO_BANK, bank, ignore=shutil.ignore_patterns(".lock"))
    count = len(memory.read_entries(bank, memory.EntryKind.PROGRESS))
    config = PipelineConfig(memory_bank=str(bank))
    run = run_stage(stage_named("record"), config, finished_inputs(tmp_path / "run"), str(tmp_path / "rec"))
    assert run.result["bank"] == str(bank)
    entries = memory.read_entries(bank, memory.EntryKind.PROGRESS)
    assert len(entries) == count + 1 and entries[-1].title.endswith("(Sharpe 0.62)")
    assert (tmp_path / "rec" / memory.ENTRY_FILE).exists()
    # The bank is part of the stage's key: the same run with another bank (or none) records again.
    assert run_stage(stage_named("record"), config, finished_inputs(tmp_path / "run"), str(tmp_path / "rec")).skipped
    assert not run_stage(
        stage_named("record"), PipelineConfig(), finished_inputs(tmp_path / "run"), str(tmp_path / "rec")
    ).skipped


def test_a_bank_that_cannot_take_the_entry_stops_the_pipeline_before_any_stage(tmp_path: Path) -> None:
    missing = PipelineConfig(out=str(tmp_path / "run"), memory_bank=str(tmp_path / "nowhere"))
    with pytest.raises(RlopsError, match=r"memory bank .*nowhere: no such folder \(from --bank or memory_bank\)"):
        run_pipeline(missing, say=lambda _: None)
    broken = tmp_path / "broken"
    broken.mkdir()
    with pytest.raises(RlopsError, match=r"memory bank .*broken: productContext.md:0: file is missing"):
        run_pipeline(PipelineConfig(out=str(tmp_path / "run"), memory_bank=str(broken)), say=lambda _: None)
    assert not (tmp_path / "run").exists()
    with pytest.raises(RlopsError, match="memory_bank must be the path of a local memory bank folder"):
        PipelineConfig(memory_bank="s3://bucket/bank")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"algos": ["ppo"], "learning_rate": 1}, r"unknown key\(s\) learning_rate"),
        ({"algos": ["dqn"]}, r"unknown algorithm\(s\) dqn"),
        ({"samples": 0}, "samples must be >= 1"),
        ({"baselines": ["oracle"]}, r"unknown baseline\(s\) oracle"),
        ({"algos": "ppo"}, "algos must be a list"),
    ],
)
def test_bad_pipeline_configs_name_the_problem(tmp_path: Path, settings: dict[str, object], message: str) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(settings))
    with pytest.raises(RlopsError, match=message):
        PipelineConfig.from_yaml(str(path))
