"""Bad input to `rlops tune` fails with one clear line before anything is created (no Ray, no data)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from ml.tune.runner import run_tune
from ml.tune.settings import TuneSettings
from ml.tune.spaces import DEFAULT_SPACES, build_space, read_space_file
from rlops.cli.main import run
from rlops_core.errors import RlopsError


@pytest.fixture
def rlops(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> object:
    """Run the `rlops` entry point in-process: (exit code, stderr)."""

    def call(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["rlops", *args])
        with pytest.raises(SystemExit) as exit_info:
            run()
        code = exit_info.value.code
        return code if isinstance(code, int) else 1, capsys.readouterr().err

    return call


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--algo", "dqn"], "unknown algorithm 'dqn'"),
        (["--algo", "ppo", "--search", "hyperband"], "unknown search 'hyperband'"),
        (["--algo", "ppo", "--scheduler", "median"], "unknown scheduler 'median'"),
        (["--algo", "ppo", "--metric", "profit"], "unknown metric 'profit'"),
        (["--algo", "a3c", "--search", "bayes", "--scheduler", "pbt"], "pbt scheduler needs --search random or grid"),
        (["--algo", "ppo", "--address", "127.0.0.1:1"], "cannot reach a Ray cluster at 127.0.0.1:1"),
        (["--algo", "ppo", "--address", "ray://127.0.0.1:1"], "cannot reach a Ray cluster at ray://127.0.0.1:1"),
    ],
)
def test_cli_rejects_bad_input_in_one_line_and_creates_nothing(
    tmp_path: Path, rlops: Any, flags: list[str], message: str
) -> None:
    storage = tmp_path / "experiments"
    code, err = rlops("tune", *flags, "--smoke", "--storage", str(storage), "--name", "exp")
    assert code == 1, err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: ")
    assert message in err
    assert not storage.exists()


def test_empty_and_invalid_space_files_are_rejected(tmp_path: Path, rlops: Any) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(RlopsError, match="is empty"):
        read_space_file(empty)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(RlopsError, match="must hold a mapping"):
        read_space_file(listed)
    code, err = rlops("tune", "--algo", "ppo", "--space", str(empty), "--storage", str(tmp_path / "x"))
    assert code == 1
    assert "is empty" in err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"learning_rate": {"type": "loguniform", "low": 0.0, "high": 1e-3}}, "loguniform needs low > 0"),
        ({"gamma": {"type": "uniform", "low": 0.99, "high": 0.9}}, "low must be < high"),
        ({"gamma": {"type": "normal", "low": 0.9, "high": 0.99}}, "type must be one of"),
        ({"gamma": {"type": "uniform", "low": "a", "high": 0.99}}, "low must be a finite number"),
        ({"num_epochs": {"type": "choice", "values": []}}, "non-empty list of values"),
        ({"momentum": [0.9, 0.99]}, "not a PPOConfig hyperparameter"),
        ({"gamma": {"type": "uniform", "low": 0.9, "high": 1.5}}, "value 1.5 is not a valid setting"),
        # 96 does not divide the default rollout of 8 x 128 transitions: caught now, not inside a trial.
        ({"batch_size": [64, 96]}, "value 96 is not a valid setting"),
        ({"num_epochs": {"type": "uniform", "low": 1, "high": 4}}, "must be an integer"),
        ({"gamma": {"type": "uniform", "low": 0.9, "high": 0.99, "step": 2}}, "unknown key"),
    ],
)
def test_invalid_space_entries_name_the_parameter_and_rule(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(RlopsError, match=message):
        build_space("ppo", overrides, {}, "random")


def test_a_space_with_nothing_to_search_is_empty() -> None:
    removed: dict[str, object] = dict.fromkeys(DEFAULT_SPACES["ppo"])
    with pytest.raises(RlopsError, match="search space is empty"):
        build_space("ppo", removed, {}, "random")
    only_choices = {name: None for name, spec in DEFAULT_SPACES["a3c"].items() if spec["type"] != "choice"}
    with pytest.raises(RlopsError, match="no hyperparameter with a continuous range"):
        build_space("a3c", only_choices, {}, "bayesopt")
    with pytest.raises(RlopsError, match="no hyperparameter with a grid list"):
        build_space("ppo", {"learning_rate": {"type": "loguniform", "low": 1e-5, "high": 1e-3}}, {}, "grid")


def test_spaces_map_onto_each_search_algorithm() -> None:
    gamma = {"type": "uniform", "low": 0.9, "high": 0.99, "grid": [0.9, 0.99]}
    space = build_space("ppo", {"gamma": gamma}, {}, "grid")
    grid = space.to_tune("grid")
    assert sorted(grid) == ["gamma", "learning_rate"]
    assert grid["gamma"] == {"grid_search": [0.9, 0.99]}
    assert sorted(space.to_tune("random")) == sorted(DEFAULT_SPACES["ppo"])
    assert "batch_size" not in space.to_tune("bayesopt")
    assert space.mutations()["batch_size"] == [64, 128, 256]


def test_an_existing_experiment_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "exp").mkdir()
    settings = TuneSettings(algo="ppo", storage=str(tmp_path), name="exp", smoke=True)
    with pytest.raises(RlopsError, match="already exists; continue it with --resume"):
        run_tune(settings)
    assert list((tmp_path / "exp").iterdir()) == []


def test_resume_of_something_that_is_no_experiment(tmp_path: Path, rlops: Any) -> None:
    code, err = rlops("tune", "--resume", str(tmp_path / "nothing"))
    assert code == 1
    assert "is not an rlops tune experiment" in err


def test_pbt_perturbations_are_clipped_back_into_the_search_ranges() -> None:
    from ml.tune.spaces import build_space

    space = build_space("ppo", {}, {}, "random")
    gamma = next(p for p in space.params if p.name == "gamma")
    clipped = space.clip({"gamma": 1.16, "learning_rate": 1e-9})
    assert clipped["gamma"] == gamma.high
    assert clipped["learning_rate"] == next(p for p in space.params if p.name == "learning_rate").low
