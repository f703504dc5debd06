"""The git side of deploying: one commit per promotion or rollback, found again by its trailers."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from rlops_core.errors import RlopsError

PROMOTED = "Rlops-Promoted"
ROLLED_BACK = "Rlops-Rolled-Back"
REVERTS = "Rlops-Reverts"


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    date: str
    subject: str
    trailers: dict[str, str]


def git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError as exc:
        raise RlopsError("git is not installed") from exc
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
        raise RlopsError(f"git {args[0]} in {repo}: {lines[-1]}")
    return done.stdout


def repository_root(start: Path) -> Path:
    try:
        return Path(git(start, "rev-parse", "--show-toplevel").strip())
    except RlopsError as exc:
        raise RlopsError(f"{start} is not inside a git repository (deploying is a commit)") from exc


def history(repo: Path, path: Path) -> list[Commit]:
    """Commits that changed `path`, newest first, with their trailers."""
    fields = "%H%x1f%an <%ae>%x1f%aI%x1f%s%x1f%(trailers:only,unfold)%x1e"
    out = git(repo, "log", f"--format={fields}", "--", str(path.relative_to(repo)))
    commits = []
    for record in out.split("\x1e"):
        if not record.strip():
            continue
        sha, author, date, subject, trailer_text = record.strip("\n").split("\x1f")
        trailers = {}
        for line in trailer_text.splitlines():
            key, _, value = line.partition(":")
            if value:
                trailers[key.strip()] = value.strip()
        commits.append(Commit(sha, author, date, subject, trailers))
    return commits


def content_at(repo: Path, sha: str, path: Path) -> str:
    return git(repo, "show", f"{sha}:{path.relative_to(repo).as_posix()}")


def commit_file(repo: Path, path: Path, message: str) -> str:
    """Commit exactly `path` (whatever else is staged stays out) and return the new commit's SHA."""
    relative = str(path.relative_to(repo))
    git(repo, "add", "--", relative)
    git(repo, "commit", "-q", "-m", message, "--", relative)
    return git(repo, "rev-parse", "HEAD").strip()


def requester(repo: Path) -> str:
    """Who asked: git's configured identity (CI sets it to the workflow's actor)."""
    try:
        name = git(repo, "config", "user.name").strip()
    except RlopsError:
        name = ""
    if not name:
        raise RlopsError("git user.name is not set: a promotion names who asked (git config user.name ...)")
    return name
