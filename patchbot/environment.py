"""The project's own environment for one validation: a fresh virtual environment holding the merged checkout's
dependency set, installed by the policy's pip arguments, with the installed versions read from its metadata.

The venv is made without pip (a tenth of a second instead of seconds): the bot's own pip installs into it
through `pip --python`, with a download cache shared between runs, so re-validating a bump is quick.
Everything that can run code from the update (the build backends during install, the tests) runs in the
sandbox; reading the installed versions only parses metadata files, so it runs nothing.
"""

from __future__ import annotations

import email.parser
import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from packaging.utils import canonicalize_name

from patchbot.proc import Proc, last_line, run_program
from patchbot.sandbox import Sandbox
from rlops_core.errors import RlopsError

# Where pip may look for packages; the operator's index settings reach the install step, nothing else does.
PIP_SOURCES = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX", "PIP_CERT")


def default_install(checkout: Path) -> tuple[str, ...]:
    """One pip call for a plain project: its requirements, the project itself, and pytest, under its constraints."""
    args = [f"-c {path.name}" for path in sorted(checkout.glob("constraints*.txt"))]
    args += [f"-r {path.name}" for path in sorted(checkout.glob("requirements*.txt"))]
    if (checkout / "pyproject.toml").is_file() or (checkout / "setup.py").is_file():
        args.append(".")
    args.append("pytest")
    return (" ".join(args),)


def pip_sources(environ: Mapping[str, str]) -> dict[str, str]:
    """The operator's pip index settings, refused when a URL carries credentials (the install runs update code)."""
    found = {name: environ[name] for name in PIP_SOURCES if environ.get(name)}
    for name, value in found.items():
        for part in value.split():
            if urlparse(part).password is not None or "@" in urlparse(part).netloc:
                raise RlopsError(
                    f"{name} holds credentials in a URL; the install step runs code from the update, so give pip "
                    "an index without credentials (a read-only mirror) instead"
                )
    return found


def local_paths(sources: Mapping[str, str]) -> tuple[Path, ...]:
    """Folders and files the pip settings point at on this machine, which a sandbox must be able to read."""
    paths = []
    for name, value in sources.items():
        if name == "PIP_NO_INDEX":
            continue
        for part in value.split():
            parsed = urlparse(part)
            path = Path(parsed.path) if parsed.scheme == "file" else Path(part) if not parsed.scheme else None
            if path is not None and path.exists():
                paths.append(path.resolve())
    return tuple(dict.fromkeys(paths))


def read_installed(venv: Path) -> dict[str, str]:
    """Canonical name -> version of every distribution in the venv, from its METADATA files alone."""
    parser = email.parser.HeaderParser()
    found: dict[str, str] = {}
    for metadata in sorted(venv.glob("lib/python*/site-packages/*.dist-info/METADATA")):
        direct_url = metadata.with_name("direct_url.json")
        if direct_url.is_file() and '"dir_info"' in direct_url.read_text(encoding="utf-8"):
            continue  # the project itself (or another local folder): not a published dependency
        headers = parser.parsestr(metadata.read_text(encoding="utf-8", errors="replace"))
        if headers["Name"] and headers["Version"]:
            found[canonicalize_name(headers["Name"])] = headers["Version"].strip()
    return found


@dataclass(frozen=True)
class Installed:
    proc: Proc
    versions: dict[str, str]
    commands: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.proc.exit_code == 0

    @property
    def problem(self) -> str:
        return last_line(self.proc.stderr) or last_line(self.proc.stdout) or f"exit {self.proc.exit_code}"


class ProjectEnvironment:
    """One fresh venv next to the checkout, filled and used only through the sandbox."""

    def __init__(
        self,
        checkout: Path,
        venv: Path,
        sandbox: Sandbox,
        env: dict[str, str],
        pip_env: dict[str, str],
        base_python: Path,
        timeout_s: float,
    ) -> None:
        self.checkout = checkout
        self.venv = venv
        self.sandbox = sandbox
        self.env = env
        self.pip_env = pip_env
        self.base_python = base_python
        self.timeout_s = timeout_s

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def create(self) -> Proc:
        # The bot creates the venv itself: nothing of the update runs yet.
        argv: list[str | Path] = [self.base_python, "-m", "venv", "--without-pip", self.venv]
        return run_program(argv, self.checkout, self.env, 300.0)

    def install(self, pip_args: tuple[str, ...]) -> Installed:
        total = Proc(0, "", "", 0.0)
        env = {**self.env, **self.pip_env}
        for line in pip_args:
            argv: list[str | Path] = [sys.executable, "-m", "pip", "--python", self.python, "install", "--no-input"]
            argv += shlex.split(line)
            proc = run_program(
                self.sandbox.argv(argv, self.checkout, install=True), self.checkout, env, self.timeout_s,
                **self.sandbox.popen_kwargs(),
            )  # fmt: skip
            total = Proc(proc.exit_code, proc.stdout, proc.stderr, total.duration_s + proc.duration_s, proc.timed_out)
            if proc.exit_code != 0:
                break
        return Installed(total, read_installed(self.venv), pip_args)

    def run(self, command: list[str]) -> Proc:
        env = {**self.env, "VIRTUAL_ENV": str(self.venv), "PATH": f"{self.venv / 'bin'}{os.pathsep}{self.env['PATH']}"}
        argv = self.sandbox.argv(command, self.checkout, install=False)
        return run_program(argv, self.checkout, env, self.timeout_s, **self.sandbox.popen_kwargs())
