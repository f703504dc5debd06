"""Approving and merging, pinned to the SHA that was tested.

The review names the tested commit and the merge passes `sha=`; if the head moved GitHub refuses (409) and the
PR is re-validated next run. There is no admin path: branch protection applies to the bot like anyone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from patchbot.models import MergeOutcome, Snapshot


@dataclass(frozen=True)
class MergeResult:
    outcome: MergeOutcome
    merged_sha: str | None
    detail: str


def _already_approved(pr: Any, bot_login: str, sha: str) -> bool:
    return any(
        review.user is not None
        and review.user.login == bot_login
        and review.state == "APPROVED"
        and review.commit_id == sha
        for review in pr.get_reviews()
    )


def approve_and_merge(repo: Any, pr: Any, snap: Snapshot, bot_login: str, method: str) -> MergeResult:
    from github import GithubException

    sha = snap.head_sha
    if not _already_approved(pr, bot_login, sha):
        pr.create_review(
            commit=repo.get_commit(sha),
            event="APPROVE",
            body=f"Validated `{sha}` on `{snap.branch}`; approving exactly this commit.",
        )
    try:
        status = pr.merge(
            merge_method=method,
            sha=sha,
            commit_title=f"{snap.title} (#{snap.number})",
            commit_message=f"Security update validated and merged by patchbot at {sha}.",
        )
    except GithubException as exc:
        message = exc.data.get("message", "") if isinstance(exc.data, dict) else str(exc.data)
        if exc.status == 409:
            return MergeResult(MergeOutcome.HEAD_MOVED, None, f"GitHub: {message}; re-validate next run")
        if exc.status in (405, 422):
            return MergeResult(MergeOutcome.REFUSED, None, f"GitHub refused the merge ({exc.status}: {message})")
        raise
    if not status.merged:
        return MergeResult(MergeOutcome.REFUSED, None, f"GitHub did not merge: {status.message}")
    return MergeResult(MergeOutcome.MERGED, str(status.sha), "merged")
