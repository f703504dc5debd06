"""`rlops train`: smoke runs write a complete run directory; bad input is one line and exit 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ml.agents.config import PPOConfig
from ml.agents.train import build_request, read_config_file
from rlops.cli.main import app
from rlops_core.errors import RlopsError


def test_ppo_smoke_run_and_resume(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["train", "--algo", "ppo", "--env", "cartpole", "--smoke", "--runs-dir", str(tmp_path), "--no-progress"]
    first = runner.invoke(app, [*args, "--name", "first"])
    assert first.exit_code == 0, first.output
    assert "ppo run" in first.output
    assert "steps/s" in first.output
    run = tmp_path / "first"
    for name in ("config.yaml", "metrics.csv", "summary.json", "checkpoints/final.pt"):
        assert (run / name).is_file(), name
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["algo"] == "ppo"
    assert saved["environment"] == {"kind": "gym", "env_id": "CartPole-v1"}
    assert saved["config"]["num_envs"] == 4

    resumed = runner.invoke(
        app,
        [*args, "--name", "second", "--resume", str(run / "checkpoints" / "final.pt"), "--total-timesteps", "2048"],
    )
    assert resumed.exit_code == 0, resumed.output
    assert "2,048 steps" in resumed.output
    assert yaml.safe_load((tmp_path / "second" / "config.yaml").read_text())["resumed_from"].endswith("final.pt")


def test_saved_config_is_a_valid_config_file(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["train", "--algo", "ppo", "--env", "cartpole", "--smoke", "--runs-dir", str(tmp_path), "--no-progress"]
    assert runner.invoke(app, [*args, "--name", "a"]).exit_code == 0
    request = build_request("ppo", env="cartpole", config_path=tmp_path / "a" / "config.yaml", runs_dir=tmp_path)
    assert isinstance(request.config, PPOConfig)
    assert request.config.total_timesteps == 1024


def test_config_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: -0.1\n")
    with pytest.raises(RlopsError, match=r"learning_rate=-0\.1: must be > 0"):
        build_request("ppo", env="cartpole", config_path=bad)
    bad.write_text("algo: a3c\nconfig: {}\n")
    with pytest.raises(RlopsError, match="is for algorithm 'a3c', not 'ppo'"):
        build_request("ppo", env="cartpole", config_path=bad)
    bad.write_text("[1, 2")
    with pytest.raises(RlopsError, match="not valid YAML"):
        read_config_file(bad)
    with pytest.raises(RlopsError, match="does not exist"):
        read_config_file(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algo", "dqn"], "error: unknown algorithm 'dqn': choose one of ppo, a3c"),
        (["--algo", "ppo", "--env", "cartpole", "--total-timesteps", "-5"], "total_timesteps=-5: must be > 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(tmp_path: Path, args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rlops.cli", "train", *args, "--runs-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())  # rejected before any run directory was made
