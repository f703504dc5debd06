"""One run per repository at a time on this machine (the workflow's concurrency group covers other machines).

The lock is an exclusive, non-blocking flock: a second run stops at once with who holds it, and a crashed run
leaves nothing behind because the kernel drops the lock with the process.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from rlops_core.errors import RlopsError


def lock_path(state_dir: Path, repo: str) -> Path:
    return state_dir / f"{repo.replace('/', '__')}.lock"


@contextmanager
def repo_lock(state_dir: Path, repo: str) -> Iterator[Path]:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = lock_path(state_dir, repo)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RlopsError(f"another patchbot run holds the lock for {repo} ({holder}); {path}") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} since {datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}")
            handle.flush()
            yield path
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
