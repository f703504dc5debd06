"""The research pipeline: the whole chain in smoke mode, reuse of finished stages, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ml.pipeline.config import PipelineConfig
from ml.pipeline.runner import run_pipeline, run_stage
from ml.pipeline.stages import stage_named
from rlops import memory
from rlops.errors import RlopsError

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
    config = PipelineConfig(out=str(tmp_path / "run"), smoke=True, samples=2, iterations=2)
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
    entries = memory.read_entries(bank, memory.EntryKind.PROGRESS)
    latest = entries[-1]
    best = runs[3].result["leaderboard"][0]  # type: ignore[index]
    assert latest.title.endswith(f"(Sharpe {best['sharpe']:.2f})")
    assert f"Sharpe {board['sharpe'].iloc[0]:.3f}" in latest.body
    for algo in ("ppo", "a3c"):
        assert (out / "tune" / algo / "best_config.yaml").exists()
        tuned = json.loads((out / "tune" / "stage.json").read_text())["result"][algo]
        assert tuned["trials"] == 2
    again = run_pipeline(config, say=lambda _: None)
    assert all(r.skipped for r in again)
    assert len(memory.read_entries(bank, memory.EntryKind.PROGRESS)) == len(entries)


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
