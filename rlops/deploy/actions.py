"""promote, rollback and status of one environment: each change one commit on its overlay's release file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rlops.deploy.evidence import BacktestEvidence, find_evidence
from rlops.deploy.git_history import (
    PROMOTED,
    REVERTS,
    ROLLED_BACK,
    Commit,
    commit_file,
    content_at,
    git,
    history,
    repository_root,
    requester,
)
from rlops.deploy.overlay import (
    RELEASE_FILE,
    Release,
    check_model,
    check_tag,
    overlay_dir,
    parse_release,
    read_gate,
    read_release,
    render_release,
)
from rlops_core import memory
from rlops_core.errors import RlopsError


@dataclass(frozen=True)
class Outcome:
    env: str
    release: Release
    commit: str | None  # None: nothing to change, nothing committed
    message: str


@dataclass(frozen=True)
class Status:
    env: str
    release: Release
    commit: Commit | None


def _unchanged_in_worktree(repo: Path, path: Path) -> None:
    if git(repo, "status", "--porcelain", "--", str(path.relative_to(repo))).strip():
        raise RlopsError(f"{path.relative_to(repo)} has uncommitted changes; commit or discard them first")


def _gate(repo: Path, env: str, model: str, override: str | None, bank: Path | None) -> BacktestEvidence | None:
    gate = read_gate(overlay_dir(repo, env))
    try:
        evidence = find_evidence(model)
    except RlopsError as exc:
        if override is None:
            raise
        _record_override(bank, env, model, override, str(exc))
        return None
    short = []
    if evidence.test_sharpe < gate.min_test_sharpe:
        short.append(f"test Sharpe {evidence.test_sharpe:.3f} < {gate.min_test_sharpe:g}")
    if evidence.deflated_sharpe < gate.min_deflated_sharpe:
        short.append(f"deflated Sharpe {evidence.deflated_sharpe:.3f} < {gate.min_deflated_sharpe:g}")
    if short and override is None:
        raise RlopsError(
            f"{model} does not pass {env}'s gate ({'; '.join(short)}, from {evidence.run}/backtest); "
            "pass --override REASON to promote it anyway (recorded in the memory bank)"
        )
    if short and override is not None:
        _record_override(bank, env, model, override, "; ".join(short))
    return evidence


def _record_override(bank: Path | None, env: str, model: str, reason: str, shortfall: str) -> None:
    if not reason.strip():
        raise RlopsError("--override needs a reason")
    memory.add_entry(
        bank or memory.find_bank(),
        memory.EntryKind.DECISION,
        f"Promotion gate overridden for {env}",
        f"{model} promoted to {env} despite: {shortfall}. Reason given: {reason.strip()}",
    )


def _ran_in(repo: Path, env: str, tag: str) -> None:
    """Refuse a tag that `env` never ran: no commit of its release file ever named that image tag."""
    path = overlay_dir(repo, env) / RELEASE_FILE
    for commit in history(repo, path):
        if parse_release(content_at(repo, commit.sha, path), f"{path}@{commit.sha[:12]}").tag == tag:
            return
    raise RlopsError(f"{env} never ran image tag {tag}: promote it to {env} first (its canary is the proof)")


def promote(
    start: Path,
    env: str,
    tag: str,
    model: str | None = None,
    override: str | None = None,
    bank: Path | None = None,
    ran_in: str | None = None,
) -> Outcome:
    repo = repository_root(start)
    folder = overlay_dir(repo, env)
    _unchanged_in_worktree(repo, folder / RELEASE_FILE)
    current = read_release(folder)
    if ran_in is not None:
        _ran_in(repo, ran_in, check_tag(tag))
    release = Release(f"{current.repository}:{check_tag(tag)}", check_model(model) if model else current.model)
    if release == current:
        return Outcome(env, current, None, f"{env} already runs {release.image} with {release.model}")
    who = requester(repo)
    evidence = _gate(repo, env, release.model, override, bank) if model and release.model != current.model else None
    path = folder / RELEASE_FILE
    path.write_text(render_release(env, release), encoding="utf-8")
    evidence_line = (
        f"Backtest: test Sharpe {evidence.test_sharpe:.3f}, deflated Sharpe {evidence.deflated_sharpe:.3f} "
        f"({evidence.run})\n"
        if evidence
        else ""
    )
    message = (
        f"deploy({env}): image {tag}, model {release.model} (asked by {who})\n\n"
        f"Image: {release.image}\nModel: {release.model}\n{evidence_line}"
        + (f"Override: {override}\n" if override else "")
        + f"\n{PROMOTED}: {env}\n"
    )
    sha = commit_file(repo, path, message)
    return Outcome(env, release, sha, f"promoted {env} to {release.image} with {release.model} in {sha[:12]}")


def rollback(start: Path, env: str) -> Outcome:
    """Revert the newest promotion of `env` that is not reverted yet: the release file as it was before it."""
    repo = repository_root(start)
    path = overlay_dir(repo, env) / RELEASE_FILE
    _unchanged_in_worktree(repo, path)
    commits = history(repo, path)
    reverted = {c.trailers[REVERTS] for c in commits if REVERTS in c.trailers}
    promotions = [c for c in commits if c.trailers.get(PROMOTED) == env and c.sha not in reverted]
    if not promotions:
        raise RlopsError(f"{env} has no promotion left to roll back")
    target = promotions[0]
    who = requester(repo)
    previous = content_at(repo, f"{target.sha}^", path)
    path.write_text(previous, encoding="utf-8")
    release = read_release(path.parent)
    message = (
        f"deploy({env}): roll back {target.sha[:12]} to {release.image} (asked by {who})\n\n"
        f"Rolled back: {target.subject}\n\n{ROLLED_BACK}: {env}\n{REVERTS}: {target.sha}\n"
    )
    sha = commit_file(repo, path, message)
    return Outcome(env, release, sha, f"rolled {env} back to {release.image} with {release.model} in {sha[:12]}")


def status(start: Path, env: str) -> Status:
    repo = repository_root(start)
    path = overlay_dir(repo, env) / RELEASE_FILE
    commits = history(repo, path)
    return Status(env, read_release(path.parent), commits[0] if commits else None)
