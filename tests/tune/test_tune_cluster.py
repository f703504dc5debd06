"""Tuning beyond one in-process session: a two-node cluster, and a driver killed with SIGKILL then resumed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ml.tune.runner import run_tune
from ml.tune.settings import TuneSettings

pytestmark = pytest.mark.slow


def _quiet(_: str) -> None:
    """Progress lines are for people; tests read the outcome."""


# Ray's node start-up leaks the socket it probes the dashboard port with (ray/_private/node.py); not ours.
@pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")
def test_trials_run_on_the_head_and_the_worker_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        worker = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        settings = TuneSettings(
            algo="ppo",
            search="random",
            samples=2,
            iterations=1,
            smoke=True,
            storage=str(tmp_path),
            name="exp",
            address=cluster.address,
            cpus_per_trial=1,
        )
        outcome = run_tune(settings, say=_quiet)
        nodes = set(outcome.leaderboard["node_id"])
        head: Any = cluster.head_node  # typed as None by Ray until the head starts
        print(f"head {head.node_id}, worker {worker.node_id}, trials ran on {sorted(nodes)}")
        assert nodes == {head.node_id, worker.node_id}
        assert set(outcome.leaderboard["status"]) == {"TERMINATED"}
    finally:
        cluster.shutdown()  # type: ignore[no-untyped-call]


def _rows(trial: Path) -> list[dict[str, Any]]:
    path = trial / "result.json"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _trials(exp: Path) -> dict[str, list[dict[str, Any]]]:
    return {t.name: _rows(t) for t in sorted(exp.glob("trial_*"))}


@pytest.fixture
def ray_tmpdir() -> Iterator[Path]:
    """A short, private Ray temp root (socket paths must stay under 108 bytes); leftovers are ended by pid."""
    root = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    yield root
    listing = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        pid, _, args = line.strip().partition(" ")
        if str(root) in args and int(pid) != os.getpid():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                continue  # exited between the listing and the kill
    shutil.rmtree(root, ignore_errors=True)


def test_sigkilled_driver_resumes_without_rerunning_finished_trials(tmp_path: Path, ray_tmpdir: Path) -> None:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_TMPDIR": str(ray_tmpdir)}
    exp = tmp_path / "exp"
    cli = [sys.executable, "-m", "rlops.cli", "tune"]
    first = [
        *["--algo", "ppo", "--search", "random", "--samples", "3", "--scheduler", "none", "--smoke"],
        *["--iterations", "4", "--steps-per-iteration", "2048", "--max-concurrent", "1", "--num-cpus", "2"],
        *["--storage", str(tmp_path), "--name", "exp"],
    ]
    with (tmp_path / "first.log").open("w") as log:
        driver = subprocess.Popen([*cli, *first], env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        before: dict[str, list[dict[str, Any]]] = {}
        while time.monotonic() < deadline and driver.poll() is None:
            before = _trials(exp)
            done = [t for t, rows in before.items() if len(rows) == 4]
            running = [t for t, rows in before.items() if 0 < len(rows) < 4 and list((exp / t).glob("checkpoint_*"))]
            if done and running:
                break
            time.sleep(0.2)
        else:
            driver.kill()
            pytest.fail(
                f"never saw a finished and a checkpointed running trial: {(tmp_path / 'first.log').read_text()}"
            )
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    assert driver.returncode == -signal.SIGKILL
    before = _trials(exp)
    finished = {t for t, rows in before.items() if len(rows) == 4}
    interrupted = {t for t, rows in before.items() if 0 < len(rows) < 4}
    assert finished
    assert interrupted
    assert not (exp / "leaderboard.csv").exists()

    resumed = subprocess.run(
        [*cli, "--resume", str(exp), "--num-cpus", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = _trials(exp)
    board = pd.read_csv(exp / "leaderboard.csv")
    assert len(board) == 3
    assert set(board["status"]) == {"TERMINATED"}
    assert (board["iterations"] == 4).all()
    for trial in finished:
        assert after[trial] == before[trial]  # not one more row: the finished trial did not run again
    for trial in interrupted:
        old, new = before[trial], after[trial]
        continued = [row for row in new if row["resumed_from"] > 0]
        assert continued, "the interrupted trial restarted from scratch instead of its checkpoint"
        assert [row["training_iteration"] for row in continued] == list(range(continued[0]["resumed_from"] + 1, 5))
        kept = continued[0]["resumed_from"]
        assert new[:kept] == old[:kept]  # the reports up to the checkpoint stand as they were
    for trial, rows in after.items():
        print(
            f"{trial}: {len(before.get(trial, []))} reports before SIGKILL, {len(rows)} after resume; "
            f"resumed_from={sorted({row['resumed_from'] for row in rows})}"
        )
