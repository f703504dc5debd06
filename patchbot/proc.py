"""Running one program with a fixed argv, a given environment and a time limit, never raising for its failure."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Proc:
    exit_code: int | None
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False


def run_program(argv: Sequence[str | Path], cwd: Path, env: dict[str, str], timeout_s: float, **popen: Any) -> Proc:
    started = time.monotonic()
    try:
        done = subprocess.run(
            [str(a) for a in argv],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            **popen,
        )
    except subprocess.TimeoutExpired:
        return Proc(None, "", f"timed out after {timeout_s:.0f} s", time.monotonic() - started, timed_out=True)
    except OSError as exc:
        return Proc(None, "", f"could not start: {exc}", time.monotonic() - started)
    return Proc(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""
