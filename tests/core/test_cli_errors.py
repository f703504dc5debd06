"""Every failure a user can cause, on every command it reaches: one line on stderr, exit 1, no traceback.

Real subprocesses, as users run `rlops`. The S3 cases point AWS_ENDPOINT_URL at a closed loopback port with every
credential source removed: botocore refuses to sign before it opens a connection, so the missing-credentials path
is taken offline and the same way every time; one case adds credentials to reach the unreachable-endpoint path.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

BUCKET = "s3://rlops-no-such-bucket"
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def without_credentials() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
    env.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{closed_port()}",
        AWS_EC2_METADATA_DISABLED="true",  # no instance-metadata lookup: the chain ends at once, offline
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_CONFIG_FILE=os.devnull,
        AWS_MAX_ATTEMPTS="1",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return env


def rlops(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rlops.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**(env or dict(os.environ)), "COLUMNS": "200", "RAY_AUTH_MODE": "disabled"},
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single error line, after checking the exit code, the line count and the absence of a traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def write_bars(path: Path, bars: int) -> str:
    """A valid daily CSV of `bars` rows."""
    close = 100 + np.arange(bars) * 0.1
    frame = pd.DataFrame(
        {
            "date": pd.bdate_range("2020-01-01", periods=bars),
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": 1000,
        }
    )
    frame.to_csv(path, index=False)
    return str(path)


S3_COMMANDS: dict[str, Callable[[Path], list[str]]] = {
    "data show": lambda tmp: ["data", "show", f"{BUCKET}/store"],
    "data validate": lambda tmp: ["data", "validate", f"{BUCKET}/raw/"],
    "data ingest --to": lambda tmp: ["data", "ingest", write_bars(tmp / "SPY.csv", 10), "--to", f"{BUCKET}/store"],
    "train --dataset": lambda tmp: [
        "train",
        "--algo",
        "ppo",
        "--smoke",
        "--runs-dir",
        str(tmp),
        "--dataset",
        f"{BUCKET}/store",
    ],
    "backtest run --dataset": lambda tmp: [
        "backtest",
        "run",
        "--policy",
        "baseline:flat",
        "--dataset",
        f"{BUCKET}/store",
        "--out",
        str(tmp / "bt"),
    ],
    "backtest batch --grid": lambda tmp: ["backtest", "batch", "--grid", f"{BUCKET}/grid.yaml"],
    "report": lambda tmp: ["report", f"{BUCKET}/runs/batch"],
    "pipeline run --out": lambda tmp: ["pipeline", "run", "--smoke", "--out", f"{BUCKET}/pipeline"],
}


@pytest.mark.parametrize("command", sorted(S3_COMMANDS))
def test_missing_s3_credentials_name_the_url_and_what_to_set(command: str, tmp_path: Path) -> None:
    line = one_line_error(rlops(*S3_COMMANDS[command](tmp_path), env=without_credentials(), cwd=tmp_path))
    assert f"error: {BUCKET}/" in line
    assert "no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in line
    assert "AWS_ENDPOINT_URL" in line


def test_an_unreachable_s3_endpoint_is_named(tmp_path: Path) -> None:
    env = {**without_credentials(), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    line = one_line_error(rlops("data", "show", f"{BUCKET}/store", env=env, cwd=tmp_path))
    assert line.startswith(f"error: {BUCKET}/store/")
    assert f"the S3 endpoint {env['AWS_ENDPOINT_URL']} (AWS_ENDPOINT_URL) cannot be reached" in line


@pytest.mark.parametrize("command", ["validate", "ingest"])
def test_an_unknown_time_zone_names_the_flag_and_value(command: str, tmp_path: Path) -> None:
    csv = write_bars(tmp_path / "SPY.csv", 10)
    args = ["data", command, csv, "--tz", "Mars/Olympus"] + (
        ["--to", str(tmp_path / "store")] if command == "ingest" else []
    )
    line = one_line_error(rlops(*args))
    assert line.startswith("error: --tz 'Mars/Olympus': unknown time zone")
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["backtest", "run", "--policy", "baseline:flat", "--no-report", "--dataset"],
        ["train", "--algo", "ppo", "--smoke", "--dataset"],
    ],
    ids=["backtest", "train"],
)
def test_too_little_data_says_how_many_rows_and_what_each_split_needs(args: list[str], tmp_path: Path) -> None:
    csv = write_bars(tmp_path / "SPY.csv", 60)
    line = one_line_error(rlops(*args, csv, cwd=tmp_path))
    # The default embargo (the 50-bar warm-up) before validation and test takes train's and validation's bars.
    assert (
        "SPY.csv: too little data: 60 bars, split into train 0, validation 0, test 9 (too short: train, validation)"
        in line
    )
    assert "Train needs at least 83 bars: a 50-bar feature warm-up" in line
    assert "validation and test need at least 2 bars each" in line
    assert "a 50-bar embargo before validation and test (--embargo; default the feature warm-up)" in line
    assert "at least 340 bars in all" in line


def test_pipeline_run_refuses_a_bank_it_cannot_record_to_before_any_work(tmp_path: Path) -> None:
    line = one_line_error(
        rlops("pipeline", "run", "--smoke", "--out", str(tmp_path / "run"), "--bank", str(tmp_path / "nowhere"))
    )
    nowhere = tmp_path / "nowhere"
    assert (
        line == f"error: memory bank {nowhere}: no such folder (from --bank or memory_bank); create it or leave it out"
    )
    assert not (tmp_path / "run").exists()


def test_a_misspelt_grid_key_names_the_file_and_the_key(tmp_path: Path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"policies": ["baseline:ma_crossover"], "params": {"fsat": 5}}))
    line = one_line_error(rlops("backtest", "batch", "--grid", str(grid), "--out", str(tmp_path / "out")))
    assert line.startswith(f"error: {grid}: params[0].fsat: no policy in this grid takes it")
    assert not (tmp_path / "out").exists()
