"""The memory bank: the project's dated record of decisions, progress, architecture and patches.

Entries are appended under an exclusive file lock and written atomically (temp file + rename), so concurrent
writers never interleave or lose an entry, and a crash never leaves a half-written file.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from rlops_core.errors import RlopsError


class EntryKind(StrEnum):
    DECISION = "decision"
    PROGRESS = "progress"
    ARCHITECTURE = "architecture"
    PATCH = "patch"


# File names follow the widely used "memory bank" convention so that users and tools find them.
KIND_FILES: dict[EntryKind, str] = {
    EntryKind.DECISION: "decisionLog.md",
    EntryKind.PROGRESS: "progress.md",
    EntryKind.ARCHITECTURE: "systemPatterns.md",
    EntryKind.PATCH: "patches.md",
}
CONTEXT_FILES = ("productContext.md", "activeContext.md")
FILE_TITLES: dict[EntryKind, str] = {
    EntryKind.DECISION: "Decision log",
    EntryKind.PROGRESS: "Progress",
    EntryKind.ARCHITECTURE: "System patterns (architecture)",
    EntryKind.PATCH: "Patches",
}

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_HEADING = re.compile(r"^## (?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z) · (?P<title>\S.*)$")
LOCK_NAME = ".lock"
# An entry written outside a checkout (a cluster run's record stage), for `rlops memory add --from` to append.
ENTRY_FILE = "memory-entry.md"
_ENTRY_FILE_TITLE = re.compile(r"^# rlops memory entry: (?P<kind>\S+)$")


@dataclass(frozen=True)
class Entry:
    kind: EntryKind
    timestamp: datetime
    title: str
    body: str

    def render(self) -> str:
        return f"## {self.timestamp.strftime(TIMESTAMP_FORMAT)} · {self.title}\n\n{self.body.strip()}\n"

    def to_file_text(self) -> str:
        """The entry on its own, as ENTRY_FILE holds it: its kind, then the heading and body the bank would hold."""
        return f"# rlops memory entry: {self.kind.value}\n\n{self.render()}"


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def find_bank(start: Path | None = None) -> Path:
    """The bank named by RLOPS_MEMORY_BANK, else the nearest `memory_bank/` at or above `start`."""
    env = os.environ.get("RLOPS_MEMORY_BANK")
    if env:
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "memory_bank").is_dir():
            return folder / "memory_bank"
    raise RlopsError(f"no memory_bank/ folder at or above {here}; pass --bank or set RLOPS_MEMORY_BANK")


@contextmanager
def _locked(bank: Path) -> Iterator[None]:
    with open(bank / LOCK_NAME, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_text(title: str, body: str) -> None:
    if not title.strip() or "\n" in title:
        raise RlopsError("memory entry title must be one non-empty line")
    if not body.strip():
        raise RlopsError("memory entry body must not be empty")
    for number, line in enumerate(body.splitlines(), start=1):
        if line.startswith("## "):
            raise RlopsError(f"memory entry body line {number} starts with '## ', which is reserved for entry headings")


def new_entry(
    kind: EntryKind, title: str, body: str, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Entry:
    """A checked entry dated now, not yet in any bank."""
    _check_text(title, body)
    return Entry(kind, clock().replace(microsecond=0), title.strip(), body.strip())


def parse_entry_file(text: str, where: str) -> Entry:
    """An entry from ENTRY_FILE's format; every problem names `where` and the line."""
    lines = text.splitlines()
    head = _ENTRY_FILE_TITLE.match(lines[0]) if lines else None
    kinds = ", ".join(k.value for k in EntryKind)
    if head is None or head["kind"] not in {k.value for k in EntryKind}:
        raise RlopsError(f"{where}:1: first line must read '# rlops memory entry: KIND' with KIND one of {kinds}")
    headings = [i for i, line in enumerate(lines) if line.startswith("## ")]
    if len(headings) != 1:
        raise RlopsError(f"{where}: an entry file holds exactly one '## ' heading (found {len(headings)})")
    match = _HEADING.match(lines[headings[0]])
    if match is None:
        raise RlopsError(f"{where}:{headings[0] + 1}: heading must read '## YYYY-MM-DDTHH:MM:SSZ · Title'")
    body = "\n".join(lines[headings[0] + 1 :]).strip()
    _check_text(match["title"], body)
    stamp = datetime.strptime(match["ts"], TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    return Entry(EntryKind(head["kind"]), stamp, match["title"], body)


def add_entry(
    bank: Path,
    kind: EntryKind,
    title: str,
    body: str,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Entry:
    """Append one entry; the timestamp is taken inside the lock so file order is time order."""
    _check_text(title, body)
    if not bank.is_dir():
        raise RlopsError(f"memory bank folder {bank} does not exist")
    path = bank / KIND_FILES[kind]
    with _locked(bank):
        entry = Entry(kind, clock().replace(microsecond=0), title.strip(), body.strip())
        current = path.read_text(encoding="utf-8") if path.exists() else f"# {FILE_TITLES[kind]}\n"
        _atomic_write(path, current.rstrip("\n") + "\n\n" + entry.render())
    return entry


def read_entries(bank: Path, kind: EntryKind) -> list[Entry]:
    """Parse one kind's file; raises on a malformed file (use `validate` for a full report)."""
    entries, problems = _parse(bank / KIND_FILES[kind], kind)
    if problems:
        raise RlopsError(str(problems[0]))
    return entries


def _parse(path: Path, kind: EntryKind) -> tuple[list[Entry], list[Problem]]:
    if not path.exists():
        return [], [Problem(path.name, 0, "file is missing")]
    lines = path.read_text(encoding="utf-8").splitlines()
    problems: list[Problem] = []
    if not lines or not lines[0].startswith("# "):
        problems.append(Problem(path.name, 1, "first line must be a '# ' title"))
    entries: list[Entry] = []
    heads = [i for i, line in enumerate(lines) if line.startswith("## ")]
    for n, start in enumerate(heads):
        match = _HEADING.match(lines[start])
        end = heads[n + 1] if n + 1 < len(heads) else len(lines)
        body = "\n".join(lines[start + 1 : end]).strip()
        if match is None:
            problems.append(Problem(path.name, start + 1, "heading must read '## YYYY-MM-DDTHH:MM:SSZ · Title'"))
            continue
        if not body:
            problems.append(Problem(path.name, start + 1, "entry has no body"))
        stamp = datetime.strptime(match["ts"], TIMESTAMP_FORMAT).replace(tzinfo=UTC)
        if entries and stamp < entries[-1].timestamp:
            problems.append(Problem(path.name, start + 1, f"entry is dated before the one above it ({match['ts']})"))
        entries.append(Entry(kind, stamp, match["title"], body))
    return entries, problems


def validate(bank: Path) -> list[Problem]:
    """Every problem in the bank: missing files, malformed headings, empty bodies, entries out of order."""
    problems: list[Problem] = []
    for name in CONTEXT_FILES:
        path = bank / name
        if not path.exists():
            problems.append(Problem(name, 0, "file is missing"))
        elif not path.read_text(encoding="utf-8").startswith("# "):
            problems.append(Problem(name, 1, "first line must be a '# ' title"))
    for kind in EntryKind:
        problems.extend(_parse(bank / KIND_FILES[kind], kind)[1])
    return problems
