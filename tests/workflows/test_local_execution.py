"""The rendered workflows, run step by step on this machine through the real CLI (see local_runner.py):
the commands, their arguments and their hand-offs work end to end exactly as gitops/workflows/ holds them."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from local_runner import RLOPS, LocalRun, StepFailedError, condition_holds, dag_order

from ml.backtest.batch import Grid, run_batch
from rlops_core import memory

ROOT = Path(__file__).resolve().parents[2]
RENDERED = ROOT / "gitops" / "workflows"


def _document(name: str) -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load((RENDERED / f"{name}.yaml").read_text())
    return loaded


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A local Ray cluster standing in for the RayJob's own: the tune step's driver joins it."""
    import os

    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()


def _local_buckets(root: Path) -> dict[str, str]:
    return {
        "registry": "registry.invalid/rlops",  # images are named, never pulled: steps run on this machine
        "output-prefix": str(root / "artifacts-bucket" / "runs"),
        "tuning-prefix": str(root / "tuning-bucket" / "runs"),
        "nightly-dataset": "sp500",
    }


@pytest.mark.slow
def test_research_then_backtest_fan_out_then_gpu_train_run_end_to_end_as_rendered(
    tmp_path: Path, ray_address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.delenv("RLOPS_MEMORY_BANK", raising=False)
    buckets = _local_buckets(tmp_path)

    # rlops-research: data -> tune (RayJob) -> train -> backtest -> report -> record, at smoke budgets.
    research = LocalRun(
        _document("rlops-research"),
        tmp_path / "research",
        "rlops-research-local",
        given={"algos": "[ppo]", "samples": "1", "iterations": "1", "smoke": "true", "retrain-timesteps": "1024"},
        config_map=buckets,
        ray_address=ray_address,
    )
    research.run()
    assert [s.task for s in research.steps] == ["data", "tune", "train", "backtest", "report", "record"]
    assert research.conditions == [("tune", True, False)]  # the RayJob's success condition read the status
    run = Path(buckets["output-prefix"]) / "rlops-research-local"
    tune = Path(buckets["tuning-prefix"]) / "rlops-research-local" / "tune"
    stages = {name: json.loads((run / name / "stage.json").read_text()) for name in ("data", "train", "backtest")}
    tuned = json.loads((tune / "stage.json").read_text())
    assert tuned["inputs"] == {"data": stages["data"]["key"]}
    assert stages["train"]["inputs"] == {"data": stages["data"]["key"], "tune": tuned["key"]}
    assert tuned["result"]["ppo"]["trials"] == 1
    board = pd.read_parquet(run / "backtest" / "leaderboard.parquet")
    assert (board["status"] == "ok").all() and len(board) == 4  # ppo and the three baselines, on test
    assert board["period"].eq("test").all()
    assert (run / "report" / "report.html").stat().st_size > 0

    # The record stage left its entry next to its outputs; `rlops memory add --from` appends it to a bank.
    entry_file = run / "record" / memory.ENTRY_FILE
    entry = memory.parse_entry_file(entry_file.read_text(), str(entry_file))
    bank = tmp_path / "memory_bank"
    shutil.copytree(ROOT / "memory_bank", bank, ignore=shutil.ignore_patterns(".lock"))
    added = subprocess.run(
        [RLOPS, "memory", "add", "--from", str(entry_file), "--bank", str(bank)], capture_output=True, text=True
    )
    assert added.returncode == 0, added.stderr
    latest = memory.read_entries(bank, memory.EntryKind.PROGRESS)[-1]
    assert latest.title == entry.title and latest.body.startswith(entry.body)
    assert memory.validate(bank) == []

    # rlops-backtest: the trained checkpoint and a baseline over two periods, one step per cell, fanned back in.
    # The checkpoint was refit on train + validation, so its validation cell is in-sample: allowed, and labelled.
    checkpoint = json.loads((run / "train" / "stage.json").read_text())["result"]["ppo"]["checkpoint"]
    grid = {
        "policies": [checkpoint, "baseline:buy_and_hold"],
        "periods": ["validation", "test"],
        "bootstrap_samples": 50,
        "allow_in_sample": True,
    }
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(yaml.safe_dump(grid))
    fan = LocalRun(
        _document("rlops-backtest"),
        tmp_path / "backtest",
        "rlops-backtest-local",
        given={"grid": str(grid_file)},
        config_map=buckets,
    )
    fan.run()
    assert [s.task for s in fan.steps] == ["cells", *(f"cell({i}:{i})" for i in range(4)), "leaderboard"]
    merged = pd.read_parquet(Path(buckets["output-prefix"]) / "rlops-backtest-local" / "leaderboard.parquet")
    together = run_batch(Grid.from_yaml(str(grid_file)), str(tmp_path / "one-batch")).leaderboard
    columns = ["rank", "policy", "period", "status", "sharpe", "total_return", "max_drawdown"]
    pd.testing.assert_frame_equal(merged[columns], together[columns])  # fanned out == one local batch
    assert merged.set_index(["policy", "period"])["in_sample"].to_dict()[(checkpoint, "validation")]

    # rlops-train: one configuration; on the cluster --device is cuda on a GPU node, here the CPU.
    train = LocalRun(
        _document("rlops-train"),
        tmp_path / "train",
        "rlops-train-local",
        given={
            "hyperparameters": "{num_envs: 2, rollout_steps: 64, batch_size: 64}",
            "total-timesteps": "256",
            "device": "cpu",
        },
        config_map=buckets,
    )
    train.run()
    uploaded = tmp_path / "train" / "artifact-repository" / "runs" / "rlops-train-local" / "train"
    assert sorted(p.name for p in (uploaded / "checkpoints").glob("*.pt"))
    config = yaml.safe_load((uploaded / "config.yaml").read_text())
    assert config["config"]["num_envs"] == 2 and config["config"]["total_timesteps"] == 256


def test_a_failing_step_stops_the_run_with_its_error(tmp_path: Path) -> None:
    run = LocalRun(
        _document("rlops-backtest"),
        tmp_path,
        "bad",
        given={"grid": str(tmp_path / "missing.yaml")},
        config_map=_local_buckets(tmp_path),
    )
    with pytest.raises(StepFailedError, match=r"cells: exit 1"):
        run.run()
    assert [s.task for s in run.steps] == ["cells"]


def test_runner_orders_dependencies_and_reads_conditions_as_argo_does() -> None:
    tasks = [{"name": "c", "dependencies": ["a", "b"]}, {"name": "b", "dependencies": ["a"]}, {"name": "a"}]
    assert [t["name"] for t in dag_order(tasks)] == ["a", "b", "c"]
    with pytest.raises(StepFailedError, match="cycle"):
        dag_order([{"name": "a", "dependencies": ["b"]}, {"name": "b", "dependencies": ["a"]}])
    failure = "status.jobDeploymentStatus in (Failed,ValidationFailed),status.jobStatus in (FAILED,STOPPED)"
    assert condition_holds(failure, {"status": {"jobDeploymentStatus": "Running", "jobStatus": "STOPPED"}}, True)
    assert not condition_holds(failure, {"status": {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}}, True)
    success = "status.jobDeploymentStatus == Complete,status.jobStatus == SUCCEEDED"
    assert not condition_holds(success, {"status": {"jobDeploymentStatus": "Complete", "jobStatus": "FAILED"}}, False)
    with pytest.raises(StepFailedError, match="unknown expression"):
        LocalRun.substitute("{{workflow.paramters.dataset}}", {"workflow.parameters.dataset": "x"})
