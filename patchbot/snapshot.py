"""Reading one pull request into a `Snapshot`: author and commit verification, files, CI state, bumps, alerts.

Only reads happen here; the snapshot is what `decide` judges and what the report describes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from patchbot.discover import match_advisories
from patchbot.models import Advisory, CheckInfo, CheckState, CommitInfo, Snapshot
from patchbot.versions import parse_bumps

STATUS_CONTEXT = "patchbot/validation"
_GREEN_CONCLUSIONS = {"success", "neutral", "skipped"}
_STATUS_STATES = {
    "success": CheckState.SUCCESS,
    "pending": CheckState.PENDING,
    "failure": CheckState.FAILURE,
    "error": CheckState.FAILURE,
}


def _commit_info(commit: Any) -> tuple[CommitInfo, str]:
    author = commit.author.login if commit.author is not None else None
    git_commit = commit.commit
    verification = git_commit.verification
    verified = bool(verification is not None and verification.verified)
    return CommitInfo(commit.sha, author, verified), str(git_commit.message or "")


def checks_on(repo: Any, sha: str) -> tuple[CheckInfo, ...]:
    """CI statuses and check runs on `sha`, the bot's own status left out (it must not vote for itself)."""
    commit = repo.get_commit(sha)
    found: dict[str, CheckInfo] = {}
    for status in commit.get_combined_status().statuses:
        if status.context != STATUS_CONTEXT:
            found[status.context] = CheckInfo(status.context, _STATUS_STATES.get(status.state, CheckState.FAILURE))
    for run in commit.get_check_runs():
        if run.status != "completed":
            state = CheckState.PENDING
        elif run.conclusion in _GREEN_CONCLUSIONS:
            state = CheckState.SUCCESS
        else:
            state = CheckState.FAILURE
        found[run.name] = CheckInfo(run.name, state)
    return tuple(found[name] for name in sorted(found))


def _files(pr: Any) -> Iterable[str]:
    for changed in pr.get_files():
        yield changed.filename
        # A rename out of a guarded folder touches that folder too.
        if getattr(changed, "previous_filename", None):
            yield changed.previous_filename


def take_snapshot(repo: Any, pr: Any, alerts: tuple[Advisory, ...]) -> Snapshot:
    commits: list[CommitInfo] = []
    messages: list[str] = []
    for commit in pr.get_commits():
        info, message = _commit_info(commit)
        commits.append(info)
        messages.append(message)
    bumps = parse_bumps(pr.title or "", pr.body or "", messages)
    return Snapshot(
        repo=repo.full_name,
        number=int(pr.number),
        title=str(pr.title or ""),
        url=str(pr.html_url or ""),
        author=str(pr.user.login),
        author_is_bot=pr.user.type == "Bot",
        labels=tuple(label.name for label in pr.labels),
        draft=bool(pr.draft),
        base_ref=str(pr.base.ref),
        base_sha=str(pr.base.sha),
        head_ref=str(pr.head.ref),
        head_sha=str(pr.head.sha),
        mergeable=pr.mergeable,
        files=tuple(dict.fromkeys(_files(pr))),
        commits=tuple(commits),
        bumps=bumps,
        advisories=match_advisories(bumps, alerts),
        checks=checks_on(repo, pr.head.sha),
    )
