"""What people see: one bot comment per pull request (found again by a hidden marker and edited in place), a
commit status on the tested SHA, and the `needs-human` label on holds a person has to resolve.

Each write is skipped when GitHub already shows the same thing, so a rerun with the same outcome writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from patchbot.models import Decision, DecisionCode, MergeOutcome, Snapshot, ToolStatus, Validation
from patchbot.policy import Policy
from patchbot.snapshot import STATUS_CONTEXT
from patchbot.validate import strip_timings

MARKER = "<!-- patchbot:report -->"
_STATE = re.compile(r"<!-- patchbot:state (?P<digest>[0-9a-f]{16}) -->")
# Holds that resolve themselves on a later run (CI finishing, a fresh validation) need no person.
TRANSIENT = frozenset(
    {DecisionCode.CHECKS_PENDING, DecisionCode.HEAD_MOVED, DecisionCode.BASE_MOVED, DecisionCode.MERGE_LIMIT}
)


@dataclass(frozen=True)
class Report:
    snapshot: Snapshot
    decision: Decision
    outcome: MergeOutcome
    merged_sha: str | None
    policy: Policy


@dataclass(frozen=True)
class Comment:
    body: str
    digest: str


def _digest(report: Report) -> str:
    snap, validation = report.snapshot, report.snapshot.validation
    state = {
        "head": snap.head_sha,
        "decision": report.decision.code.value,
        "reason": report.decision.reason,
        "outcome": report.outcome.value,
        "merged": report.merged_sha,
        "policy": report.policy.version,
        "base": validation.base_sha if validation else None,
        "tools": [t.stable() for t in validation.tools] if validation else None,
        "installed": list(validation.installed) if validation else None,
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]


def _cell(text: str) -> str:
    return strip_timings(text).replace("|", "\\|").replace("\n", " ")[:300] or "-"


def _tool_table(validation: Validation) -> list[str]:
    rows = ["| Check | Result | Exit code | Duration | Version | Detail |", "|---|---|---|---|---|---|"]
    icons = {ToolStatus.PASSED: "✅ passed", ToolStatus.FAILED: "❌ failed", ToolStatus.NOT_RUN: "⚠️ not run"}
    for tool in validation.tools:
        exit_code = "-" if tool.exit_code is None else str(tool.exit_code)
        rows.append(
            f"| {tool.name} | {icons[tool.status]} | {exit_code} | {tool.duration_s:.1f} s | "
            f"{_cell(tool.version)} | {_cell(tool.detail)} |"
        )
    return rows


def render_comment(report: Report) -> Comment:
    snap, decision, validation = report.snapshot, report.decision, report.snapshot.validation
    digest = _digest(report)
    verdict = "✅ merge" if decision.merge else f"⏸️ `{decision.code.value}`"
    lines = [
        MARKER,
        "### Security update check (patchbot)",
        "",
        f"**Decision:** {verdict}: {decision.reason}",
        f"**Outcome:** {report.outcome.value}" + (f" as `{report.merged_sha}`" if report.merged_sha else ""),
        "",
    ]
    for bump in snap.bumps:
        lines.append(f"- `{bump.package}` {bump.from_version} → {bump.to_version} ({bump.update_type.value})")
    for advisory in snap.advisories:
        lines.append(
            f"- advisory {advisory.ids}, severity **{advisory.severity.value}**, vulnerable "
            f"`{advisory.vulnerable_range}`, fixed in `{advisory.first_patched or 'unknown'}`"
        )
    if validation is None:
        lines += ["", "Not validated: the decision above holds before any code is run."]
    elif validation.conflicted:
        lines += ["", f"Merging into `{snap.base_ref}` on `{validation.branch}` conflicted; no suite was run."]
    else:
        isolation = f", {validation.isolation} isolation" if validation.isolation else ""
        lines += [
            "",
            f"Tested head `{validation.head_sha}` merged onto `{snap.base_ref}` at `{validation.base_sha}` "
            f"on isolated branch `{validation.branch}` (clean checkout, fresh virtual environment, no tokens in "
            f"the environment{isolation}):",
            "",
            *_tool_table(validation),
        ]
        if validation.installed:
            versions = ", ".join(f"`{name}` {version}" for name, version in validation.installed)
            lines += ["", f"Installed in the validation environment (read from its metadata): {versions}"]
    others = [f"- `{code.value}`: {reason}" for code, reason in decision.all_reasons[1:]]
    if others:
        lines += ["", "<details><summary>Other reasons to hold</summary>", "", *others, "", "</details>"]
    lines += [
        "",
        f"Policy `{report.policy.source}`, version {report.policy.version}. "
        "The bot edits this comment on every run; it never merges red, pending or unknown results.",
        f"<!-- patchbot:state {digest} -->",
    ]
    return Comment("\n".join(lines), digest)


def find_comment(pr: Any, bot_login: str) -> Any | None:
    """The bot's own report comment; a marker in someone else's comment is ignored (it could be planted)."""
    for comment in pr.get_issue_comments():
        if MARKER in (comment.body or "") and comment.user is not None and comment.user.login == bot_login:
            return comment
    return None


def comment_digest(comment: Any | None) -> str | None:
    if comment is None:
        return None
    match = _STATE.search(comment.body or "")
    return match["digest"] if match else None


def upsert_comment(pr: Any, bot_login: str, comment: Comment, apply: bool) -> str:
    """Create or edit the one report comment; returns what happened (or would happen in a dry run)."""
    existing = find_comment(pr, bot_login)
    if existing is not None and comment_digest(existing) == comment.digest:
        return "unchanged"
    action = "created" if existing is None else "edited"
    if not apply:
        return f"would be {action}"
    if existing is None:
        pr.create_issue_comment(comment.body)
    else:
        existing.edit(comment.body)
    return action


def status_for(validation: Validation) -> tuple[str, str]:
    """Commit status state and a short summary of the suite itself (the decision lives in the comment)."""
    if validation.conflicted:
        return "failure", "merge into the base conflicts"
    failed = [t.name for t in validation.tools if t.status is ToolStatus.FAILED]
    not_run = [t.name for t in validation.tools if t.status is ToolStatus.NOT_RUN]
    if failed:
        return "failure", f"failed: {', '.join(failed)}"
    if not_run:
        return "success", f"passed; not run: {', '.join(not_run)}"
    return "success", "suite passed"


def set_status(repo: Any, sha: str, state: str, description: str, apply: bool) -> str:
    commit = repo.get_commit(sha)
    for status in commit.get_statuses():
        if status.context == STATUS_CONTEXT:
            if status.state == state and status.description == description[:140]:
                return "unchanged"
            break
    if not apply:
        return "would be set"
    commit.create_status(state=state, description=description[:140], context=STATUS_CONTEXT)
    return "set"


def ensure_label(pr: Any, label: str, apply: bool) -> str:
    if any(existing.name == label for existing in pr.labels):
        return "unchanged"
    if not apply:
        return "would be added"
    pr.add_to_labels(label)
    return "added"
