"""What the cluster steps hand each other, checked piece by piece: stage settings from `--set`, the record
stage's entry file and `rlops memory add --from`, and a grid's cells run one by one and merged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ml.backtest.batch import Grid, grid_cell, merge_cells, run_one_cell
from ml.pipeline.config import PipelineConfig
from rlops_core import memory
from rlops_core.errors import RlopsError

RLOPS = [sys.executable, "-m", "rlops.cli"]
ROOT = Path(__file__).resolve().parents[2]


def rlops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RLOPS, *args], capture_output=True, text=True, timeout=120, env=dict(os.environ))


def test_set_reads_each_value_as_its_settings_type() -> None:
    config = PipelineConfig().with_overrides(
        [
            "dataset=2020",
            "algos=[ppo]",
            "samples=3",
            "smoke=true",
            "env={commission_bps: 5}",
            "ray_address=auto",
            "memory_bank=/srv/rlops/memory_bank",
        ]
    )
    assert config.dataset == "2020" and config.algos == ("ppo",) and config.samples == 3
    assert config.smoke is True and config.env == {"commission_bps": 5} and config.ray_address == "auto"
    assert config.memory_bank == "/srv/rlops/memory_bank"
    assert PipelineConfig(ray_address="auto").with_overrides(["ray_address="]).ray_address is None


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("samples=abc", "--set samples=abc: samples must be an integer"),
        ("smoke=maybe", "--set smoke=maybe: smoke must be true or false"),
        ("algos=ppo", r"--set algos=ppo: algos must be a list such as \[ppo, a3c\]"),
        ("algos=[dqn]", r"unknown algorithm\(s\) dqn"),
        ("learning_rate=1", "--set 'learning_rate=1': expected KEY=VALUE with KEY one of algos, baselines, "),
        ("samples", "--set 'samples': expected KEY=VALUE"),
        ("samples=0", "samples must be >= 1"),
    ],
)
def test_bad_set_values_name_the_setting(item: str, message: str) -> None:
    with pytest.raises(RlopsError, match=message):
        PipelineConfig().with_overrides([item])


def test_stage_command_refuses_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    result = rlops("pipeline", "stage", "data", "--output", str(tmp_path / "data"), "--set", "samples=many")
    assert result.returncode == 1
    assert result.stderr == "error: --set samples=many: samples must be an integer\n"
    assert not (tmp_path / "data").exists()


def test_entry_file_round_trips_and_is_appended_with_its_run_date(tmp_path: Path) -> None:
    entry = memory.new_entry(
        memory.EntryKind.PROGRESS,
        "Pipeline run on sp500",
        "1. ppo: Sharpe 0.6",
        lambda: datetime(2026, 12, 1, tzinfo=UTC),
    )
    text = entry.to_file_text()
    assert text.splitlines()[:3] == [
        "# rlops memory entry: progress",
        "",
        "## 2026-12-01T00:00:00Z · Pipeline run on sp500",
    ]
    assert memory.parse_entry_file(text, "f") == entry
    bank = tmp_path / "memory_bank"
    bank.mkdir()
    for name in (*memory.CONTEXT_FILES, *memory.KIND_FILES.values()):
        (bank / name).write_text(f"# {name}\n")
    entry_file = tmp_path / memory.ENTRY_FILE
    entry_file.write_text(text)
    result = rlops("memory", "add", "--from", str(entry_file), "--bank", str(bank))
    assert result.returncode == 0, result.stderr
    (appended,) = memory.read_entries(bank, memory.EntryKind.PROGRESS)
    assert appended.title == entry.title
    assert appended.body == f"1. ppo: Sharpe 0.6\n\nRecorded 2026-12-01T00:00:00Z in {entry_file}."
    assert memory.validate(bank) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("## 2026-12-01T00:00:00Z · T\n\nbody\n", "f:1: first line must read '# rlops memory entry: KIND'"),
        ("# rlops memory entry: gossip\n\n## 2026-12-01T00:00:00Z · T\n\nb\n", "f:1: first line must read"),
        (
            "# rlops memory entry: decision\n\nno heading\n",
            r"f: an entry file holds exactly one '## ' heading \(found 0\)",
        ),
        ("# rlops memory entry: decision\n\n## yesterday · T\n\nb\n", "f:3: heading must read"),
        ("# rlops memory entry: decision\n\n## 2026-12-01T00:00:00Z · T\n\n", "body must not be empty"),
    ],
)
def test_malformed_entry_files_name_the_file_and_line(text: str, message: str) -> None:
    with pytest.raises(RlopsError, match=message):
        memory.parse_entry_file(text, "f")


def test_memory_add_from_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.md"
    bank = str(ROOT / "memory_bank")
    for args, line in [
        (["--from", str(missing)], f"error: --from {missing}: no such file\n"),
        (
            ["--from", str(missing), "--title", "x"],
            "error: --from takes the kind, title and body from the file: drop --kind, --title and --body\n",
        ),
        (["--title", "x"], "error: memory add needs --kind, --title and --body, or --from FILE\n"),
    ]:
        result = rlops("memory", "add", *args, "--bank", bank)
        assert (result.returncode, result.stderr) == (1, line)


def test_cells_run_one_by_one_and_merge_with_a_lost_cell_counted_as_failed(tmp_path: Path) -> None:
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(yaml.safe_dump({"policies": ["baseline:buy_and_hold", "baseline:flat"],
                                         "periods": ["test"], "bootstrap_samples": 20}))  # fmt: skip
    listed = rlops("backtest", "cells", "--grid", str(grid_file))
    assert (listed.returncode, json.loads(listed.stdout)) == (0, [0, 1])
    grid = Grid.from_yaml(str(grid_file))
    out = str(tmp_path / "batch")
    assert run_one_cell(grid, 0, out).status == "ok"
    result = merge_cells(grid, out)
    board = result.leaderboard.set_index("cell")
    assert board.loc[0, "status"] == "ok" and board.loc[0, "policy"] == "baseline:buy_and_hold"
    assert board.loc[1, "status"] == "failed" and "no outcome.json at " in board.loc[1, "error"]
    assert result.trials == 1
    assert len(pd.read_parquet(Path(out) / "leaderboard.parquet")) == 2
    with pytest.raises(RlopsError, match=r"grid has cells 0\.\.1; there is no cell 2"):
        grid_cell(grid, 2)
    (Path(out) / "cells" / "0000" / "outcome.json").write_text("{")
    with pytest.raises(RlopsError, match=r"outcome.json is damaged .*; rerun cell 0"):
        merge_cells(grid, out)
