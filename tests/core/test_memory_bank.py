"""The memory bank: entries append safely under concurrency, and validation finds every malformed part."""

from __future__ import annotations

import multiprocessing
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rlops_core import memory
from rlops_core.errors import RlopsError

REPO_BANK = Path(__file__).resolve().parents[2] / "memory_bank"


@pytest.fixture
def bank(tmp_path: Path) -> Path:
    folder = tmp_path / "memory_bank"
    folder.mkdir()
    for name in memory.CONTEXT_FILES:
        (folder / name).write_text(f"# {name}\n\nContext.\n")
    for kind in memory.EntryKind:
        (folder / memory.KIND_FILES[kind]).write_text(f"# {memory.FILE_TITLES[kind]}\n")
    return folder


def test_add_appends_a_dated_entry_and_validates(bank: Path) -> None:
    fixed = datetime(2026, 1, 2, 3, 4, 5, 999, tzinfo=UTC)
    entry = memory.add_entry(bank, memory.EntryKind.DECISION, "Use numba", "One kernel for all envs.", lambda: fixed)
    text = (bank / "decisionLog.md").read_text()
    assert "## 2026-01-02T03:04:05Z · Use numba\n\nOne kernel for all envs.\n" in text
    assert memory.read_entries(bank, memory.EntryKind.DECISION) == [entry]
    assert memory.validate(bank) == []


def _writer(bank: str, worker: int, count: int) -> None:
    for n in range(count):
        memory.add_entry(Path(bank), memory.EntryKind.PROGRESS, f"worker {worker} entry {n}", f"body {worker}/{n}")


def test_concurrent_writers_lose_nothing(bank: Path) -> None:
    workers, count = 6, 15
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_writer, args=(str(bank), w, count)) for w in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    entries = memory.read_entries(bank, memory.EntryKind.PROGRESS)
    titles = {e.title for e in entries}
    assert titles == {f"worker {w} entry {n}" for w in range(workers) for n in range(count)}
    assert len(entries) == workers * count
    assert [e.timestamp for e in entries] == sorted(e.timestamp for e in entries)
    assert memory.validate(bank) == []
    assert not [p for p in bank.iterdir() if p.name.startswith(".progress.md.")]  # no temp files left behind


def test_validate_reports_each_malformed_part(bank: Path) -> None:
    (bank / "activeContext.md").unlink()
    (bank / "decisionLog.md").write_text(
        "# Decision log\n\n## 2026-01-02T00:00:00Z · Later\n\nA.\n\n## 2026-01-01T00:00:00Z · Earlier\n\nB.\n"
        "\n## yesterday · Bad heading\n\nC.\n\n## 2026-01-03T00:00:00Z · Empty\n"
    )
    problems = [str(p) for p in memory.validate(bank)]
    assert "activeContext.md:0: file is missing" in problems
    assert "decisionLog.md:7: entry is dated before the one above it (2026-01-01T00:00:00Z)" in problems
    assert any(p.startswith("decisionLog.md:11: heading must read") for p in problems)
    assert "decisionLog.md:15: entry has no body" in problems


def test_bad_entries_are_refused_before_writing(bank: Path) -> None:
    before = (bank / "patches.md").read_text()
    with pytest.raises(RlopsError, match="title must be one non-empty line"):
        memory.add_entry(bank, memory.EntryKind.PATCH, "two\nlines", "body")
    with pytest.raises(RlopsError, match="body must not be empty"):
        memory.add_entry(bank, memory.EntryKind.PATCH, "title", "  ")
    with pytest.raises(RlopsError, match="body line 2 starts with '## '"):
        memory.add_entry(bank, memory.EntryKind.PATCH, "title", "ok\n## not a heading")
    assert (bank / "patches.md").read_text() == before


def test_the_projects_own_memory_bank_is_valid(tmp_path: Path) -> None:
    assert memory.validate(REPO_BANK) == []
    copy = tmp_path / "memory_bank"
    shutil.copytree(REPO_BANK, copy, ignore=shutil.ignore_patterns(".lock"))
    memory.add_entry(copy, memory.EntryKind.ARCHITECTURE, "check", "appending keeps the real bank valid")
    assert memory.validate(copy) == []
