"""Where code from a pull request runs: the strongest isolation this machine allows, named in every report.

Levels, strongest first:
- `namespace`: bubblewrap gives the child its own user, PID, IPC, UTS, cgroup and (for tests) network
  namespaces and a private /proc; the filesystem it sees is the system folders and the interpreter read-only
  (password hashes hidden) plus the validation folder. It cannot see the bot's processes (so not their
  environment) nor any of the bot's files.
- `user` (the bot runs as root): the child runs as an unprivileged user (`nobody`) with no supplementary
  groups, so the kernel refuses it the bot's /proc/<pid>/environ and every file that is not world-readable.
- `env`: the child's environment holds no secret, but it runs as the bot's user: it could read the bot's
  initial environment through /proc and any file the bot can read. Use only where nothing stronger exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from rlops_core.errors import RlopsError

SANDBOX_UID = 65534  # nobody: owns nothing, belongs to no group that owns anything


class Isolation(StrEnum):
    NAMESPACE = "namespace"
    USER = "user"
    ENV = "env"
    AUTO = "auto"

    @property
    def rank(self) -> int:
        return {Isolation.ENV: 0, Isolation.USER: 1, Isolation.NAMESPACE: 2}[self]


def _is_root() -> bool:
    return os.geteuid() == 0


@cache
def _bwrap_works() -> bool:
    """bubblewrap is installed and this kernel lets it build namespaces (containers may forbid it)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False
    probe = [bwrap, "--die-with-parent", *_system_binds(), "--unshare-all", "--unshare-user", "true"]
    try:
        done = subprocess.run(probe, cwd="/", capture_output=True, timeout=30, check=False)
        return done.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _reachable_by_others(path: Path) -> bool:
    """Every folder down to `path` lets other users through, so the sandbox user can run what lies there."""
    return all(folder.stat().st_mode & 0o001 for folder in [path.resolve(), *path.resolve().parents])


def available() -> tuple[Isolation, ...]:
    levels = [Isolation.ENV]
    if _is_root() and all(_reachable_by_others(Path(p)) for p in (sys.base_prefix, sys.prefix)):
        levels.append(Isolation.USER)
    if _bwrap_works():
        levels.append(Isolation.NAMESPACE)
    return tuple(sorted(levels, key=lambda level: -level.rank))


def resolve(wanted: Isolation) -> Isolation:
    """`auto` is the strongest available level; an explicit level that this machine lacks is an error."""
    levels = available()
    if wanted is Isolation.AUTO:
        return levels[0]
    if wanted not in levels:
        have = ", ".join(level.value for level in levels)
        hint = "run as root"
        if wanted is Isolation.NAMESPACE:
            hint = "install bubblewrap (bwrap) and allow user namespaces"
        elif _is_root():
            hint = f"the interpreter ({sys.base_prefix}, {sys.prefix}) must be reachable by other users"
        raise RlopsError(f"--isolation {wanted.value} is not available on this machine (available: {have}); {hint}")
    return wanted


def _drop_kwargs() -> dict[str, Any]:
    if not _is_root():
        return {}
    return {"user": SANDBOX_UID, "group": SANDBOX_UID, "extra_groups": []}


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev"]
    # Started by root, the sandbox's user maps to root's files: hide the password hashes behind empty files.
    for secret in ("/etc/shadow", "/etc/gshadow"):
        if Path(secret).exists():
            args += ["--ro-bind", "/dev/null", secret]
    args += ["--tmpfs", "/tmp"]  # noqa: S108  (a fresh, private tmpfs inside the sandbox)
    for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), name]
        elif path.is_dir():
            args += ["--ro-bind", name, name]
    return args


@dataclass(frozen=True)
class Sandbox:
    """Runs argv at one isolation level; `writable` and `readable` are the only extra paths the child sees, and
    the install step alone also gets the network and `install_writable` (pip's shared cache)."""

    level: Isolation
    writable: tuple[Path, ...] = ()
    readable: tuple[Path, ...] = field(default=())
    install_writable: tuple[Path, ...] = ()

    def prepare(self, paths: Iterable[Path]) -> None:
        """Hand `paths` (recursively) to the sandbox user, so an unprivileged child can write where it must."""
        if not _is_root() or self.level is not Isolation.USER:
            return
        for root in paths:
            if root.stat().st_uid == SANDBOX_UID:
                continue  # a shared cache handed over by an earlier run: whatever is in it was written by the sandbox
            os.chown(root, SANDBOX_UID, SANDBOX_UID)
            for folder, dirs, files in os.walk(root):
                for name in (*dirs, *files):
                    os.lchown(os.path.join(folder, name), SANDBOX_UID, SANDBOX_UID)

    def argv(self, argv: Sequence[str | Path], cwd: Path, install: bool) -> list[str]:
        if self.level is not Isolation.NAMESPACE:
            return [str(a) for a in argv]
        wrapped = ["bwrap", "--die-with-parent", "--new-session", "--unshare-all", "--unshare-user"]
        if install:
            # pip needs its index; the tests get no network, so they have nowhere to send what they find.
            wrapped.append("--share-net")
        wrapped += _system_binds()
        # The interpreters live outside /usr on some runners (actions/setup-python's tool cache).
        for path in (Path(sys.base_prefix), Path(sys.prefix), *self.readable):
            if path.exists() and not path.resolve().is_relative_to("/usr"):
                wrapped += ["--ro-bind", str(path), str(path)]
        for path in (*self.writable, *(self.install_writable if install else ())):
            wrapped += ["--bind", str(path), str(path)]
        wrapped += ["--chdir", str(cwd), "--", *(str(a) for a in argv)]
        return wrapped

    def popen_kwargs(self) -> dict[str, Any]:
        return _drop_kwargs() if self.level is Isolation.USER else {}


def open_up_for_sandbox(folder: Path) -> None:
    """mkdtemp's folders are 0700: let an unprivileged sandbox user traverse (not list) down to its own run."""
    if _is_root():
        folder.chmod(0o711)
