"""The `rlops` command as users run it: real subprocesses, one readable line on error, no tracebacks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import good_rows, write_csv

RLOPS = [sys.executable, "-m", "rlops.cli"]


def rlops(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RLOPS, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "160", **(env or {})},
    )


def test_help_lists_every_command_group() -> None:
    result = rlops("--help")
    assert result.returncode == 0
    for group in ("data", "memory", "demo"):
        assert group in result.stdout


def test_data_list_and_show() -> None:
    listed = rlops("data", "list")
    assert "sp500" in listed.stdout
    assert "nasdaq" in listed.stdout
    shown = rlops("data", "show", "sp500")
    assert shown.returncode == 0
    assert "5031 bars" in shown.stdout
    assert "3 gap(s)" in shown.stdout


def test_validate_prints_each_issue_and_exits_nonzero(tmp_path: Path) -> None:
    rows = good_rows()
    rows[1]["close"] = "-3"
    write_csv(tmp_path / "bad.csv", rows)
    result = rlops("data", "validate", str(tmp_path / "bad.csv"))
    assert result.returncode == 1
    assert f"error: {tmp_path / 'bad.csv'} row 2 column 'close': price must be positive (got -3.0)" in result.stderr
    assert "Traceback" not in result.stderr
    write_csv(tmp_path / "good.csv", good_rows())
    ok = rlops("data", "validate", str(tmp_path / "good.csv"))
    assert ok.returncode == 0
    assert "ok: 5 bars, 1 symbol(s)" in ok.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("data", "show", "nope"), "error: dataset 'nope' is neither a named dataset"),
        (("data", "validate", "/nonexistent/x.csv"), "/nonexistent/x.csv: no such file"),
        (("demo", "--split", "holdout"), "error: unknown split 'holdout'"),
    ],
)
def test_bad_input_is_one_line_without_traceback(args: tuple[str, ...], message: str) -> None:
    result = rlops(*args)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_ingest_twice_is_a_noop(tmp_path: Path) -> None:
    write_csv(tmp_path / "abc.csv", good_rows(12))
    first = rlops("data", "ingest", str(tmp_path / "abc.csv"), "--to", str(tmp_path / "store"))
    assert first.returncode == 0
    assert first.stdout.startswith("wrote")
    second = rlops("data", "ingest", str(tmp_path / "abc.csv"), "--to", str(tmp_path / "store"))
    assert second.stdout.startswith("unchanged:")
    shown = rlops("data", "show", str(tmp_path / "store"))
    assert "12 bars" in shown.stdout
    # The same bars carry the same label and value on both commands, the whole hash, and the source file agrees.
    from_file = rlops("data", "show", str(tmp_path / "abc.csv"))
    labels = [
        re.findall(r"data fingerprint sha256:[0-9a-f]{64}", out.stdout) for out in (first, second, shown, from_file)
    ]
    assert all(len(found) == 1 for found in labels), labels
    assert len({found[0] for found in labels}) == 1


def test_memory_add_and_validate_through_the_cli(tmp_path: Path) -> None:
    bank = tmp_path / "memory_bank"
    bank.mkdir()
    for name in ("productContext.md", "activeContext.md"):
        (bank / name).write_text("# Context\n")
    added = rlops("memory", "add", "--kind", "decision", "--title", "Pick X", "--body", "Because Y.", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    for kind in ("progress", "architecture", "patch"):
        assert rlops("memory", "add", "--kind", kind, "--title", "t", "--body", "b", cwd=tmp_path).returncode == 0
    assert "## " in (bank / "decisionLog.md").read_text()
    valid = rlops("memory", "validate", cwd=tmp_path)
    assert valid.returncode == 0, valid.stderr
    (bank / "progress.md").write_text("no title\n")
    invalid = rlops("memory", "validate", cwd=tmp_path)
    assert invalid.returncode == 1
    assert "memory_bank/progress.md:1: first line must be a '# ' title" in invalid.stderr


def test_demo_runs_the_baselines_on_the_test_split() -> None:
    result = rlops("demo")
    assert result.returncode == 0, result.stderr
    for name in ("buy_and_hold", "flat", "random"):
        assert name in result.stdout
    assert "2015-12-31 .. 2018-12-31" in result.stdout
