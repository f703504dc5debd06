"""The single place where the bot decides: `decide(snapshot, policy) -> Decision`, a pure function.

Rules run in a fixed order (who wrote it, what it touches, what kind of update, what the advisory says, what CI
says, what local validation found, whether the head is still the tested one). Every failing rule is kept in
`all_reasons` for `explain`; the first one is the decision. Only a snapshot that passes every rule merges.
"""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatch

from patchbot.models import CheckState, Decision, DecisionCode, Snapshot, ToolStatus, UpdateType
from patchbot.policy import ALL_CHECKS, VERSION_CHECK, Policy

WORKFLOW_DIR = ".github/workflows/"

Finding = tuple[DecisionCode, str]


def _short(sha: str | None) -> str:
    return (sha or "unknown")[:7]


def _authorship(snap: Snapshot, policy: Policy) -> Iterator[Finding]:
    trusted = set(policy.trusted_authors)
    if snap.author not in trusted or not snap.author_is_bot:
        yield DecisionCode.UNVERIFIED_AUTHOR, f"author {snap.author!r} is not a trusted update bot"
        return
    if not snap.commits:
        yield DecisionCode.UNVERIFIED_AUTHOR, "the pull request has no commits to verify"
    for commit in snap.commits:
        if commit.author_login not in trusted:
            who = commit.author_login or "an unknown GitHub user"
            yield (
                DecisionCode.UNVERIFIED_AUTHOR,
                f"commit {_short(commit.sha)} is by {who}, not {snap.author}",
            )
        elif not commit.verified:
            yield DecisionCode.UNVERIFIED_AUTHOR, f"commit {_short(commit.sha)} has no verified signature"


def _paths(snap: Snapshot, policy: Policy) -> Iterator[Finding]:
    workflows = [f for f in snap.files if f.startswith(WORKFLOW_DIR)]
    if workflows:
        yield DecisionCode.TOUCHES_WORKFLOWS, f"changes CI workflows ({', '.join(workflows)})"
    guarded = [f for f in snap.files if any(fnmatch(f, pattern) for pattern in policy.human_paths)]
    if guarded:
        yield DecisionCode.HUMAN_PATH, f"changes paths that always need a human ({', '.join(guarded)})"


def _update_types(snap: Snapshot, policy: Policy) -> Iterator[Finding]:
    if snap.draft:
        yield DecisionCode.DRAFT, "the pull request is a draft"
    if not snap.bumps:
        yield DecisionCode.UNKNOWN_UPDATE, "could not tell which dependency versions change"
    for bump in snap.bumps:
        change = f"{bump.package} {bump.from_version or '?'} -> {bump.to_version or '?'}"
        if bump.update_type is UpdateType.MAJOR:
            yield DecisionCode.MAJOR_BUMP, f"{change} is a major update"
        elif bump.update_type is UpdateType.PRE_1_0:
            yield DecisionCode.PRE_1_0, f"{change} is a pre-1.0 update, where any bump may break"
        elif bump.update_type is UpdateType.UNKNOWN:
            yield DecisionCode.UNKNOWN_UPDATE, f"{change}: the update type cannot be determined"
        elif bump.update_type not in policy.allowed_update_types:
            allowed = ", ".join(sorted(t.value for t in policy.allowed_update_types)) or "none"
            yield (
                DecisionCode.UPDATE_TYPE_NOT_ALLOWED,
                f"{change} is a {bump.update_type.value} update; the policy allows {allowed}",
            )


def _advisories(snap: Snapshot, policy: Policy) -> Iterator[Finding]:
    if not snap.advisories:
        yield DecisionCode.NO_ADVISORY, "no open Dependabot alert is fixed by this pull request"
        return
    worst = max(snap.advisories, key=lambda a: a.severity.rank)
    if worst.severity.rank < policy.min_severity.rank:
        yield (
            DecisionCode.BELOW_MIN_SEVERITY,
            f"highest severity is {worst.severity.value} ({worst.ghsa_id}); "
            f"the policy auto-merges from {policy.min_severity.value}",
        )


def _checks(snap: Snapshot, policy: Policy) -> Iterator[Finding]:
    failing = sorted(c.name for c in snap.checks if c.state is CheckState.FAILURE)
    if failing:
        yield DecisionCode.CHECKS_FAILING, f"checks failing on {_short(snap.head_sha)}: {', '.join(failing)}"
    pending = sorted(c.name for c in snap.checks if c.state is CheckState.PENDING)
    reported = {c.name for c in snap.checks}
    missing = sorted(name for name in policy.required_checks if name != ALL_CHECKS and name not in reported)
    if pending:
        yield DecisionCode.CHECKS_PENDING, f"checks still running: {', '.join(pending)}"
    if ALL_CHECKS in policy.required_checks and not reported:
        yield (
            DecisionCode.CHECKS_PENDING,
            f"no check run or commit status has reported on {_short(snap.head_sha)} yet; the policy requires every "
            "check to be green",
        )
    if missing:
        yield DecisionCode.CHECKS_PENDING, f"required checks have not reported: {', '.join(missing)}"
    if snap.mergeable is False:
        yield DecisionCode.CONFLICT, f"GitHub reports that the head conflicts with {snap.base_ref}"


def _validation(snap: Snapshot, policy: Policy) -> Iterator[Finding]:
    result = snap.validation
    if result is None:
        yield DecisionCode.NOT_VALIDATED, "not validated on an isolated branch yet"
        return
    if result.conflicted:
        files = ", ".join(result.conflict_files) or "unknown files"
        yield (
            DecisionCode.CONFLICT,
            f"merging {_short(result.head_sha)} into {snap.base_ref} ({_short(result.base_sha)}) "
            f"conflicts in {files}; rebase the pull request",
        )
        return
    by_name = {tool.name: tool for tool in result.tools}
    version_check = by_name.get(VERSION_CHECK)
    if version_check is None or version_check.status is not ToolStatus.PASSED:
        detail = version_check.detail if version_check else "the check did not run"
        yield DecisionCode.STILL_VULNERABLE, f"version-range check: {detail}"
    failed = [t for t in result.tools if t.status is ToolStatus.FAILED and t.name != VERSION_CHECK]
    if failed:
        yield DecisionCode.SUITE_FAILED, "; ".join(f"{t.name} failed: {t.detail}" for t in failed)
    not_run = [t for t in result.tools if t.status is ToolStatus.NOT_RUN and t.name != VERSION_CHECK]
    blocking = [t for t in not_run if t.name not in policy.allow_missing_tools]
    if blocking:
        yield (
            DecisionCode.TOOL_NOT_RUN,
            "; ".join(f"{t.name} did not run ({t.detail})" for t in blocking)
            + " (the policy does not allow it to be missing)",
        )
    absent = [name for name in policy.suite if name not in by_name]
    if absent:
        yield DecisionCode.TOOL_NOT_RUN, f"required by the policy but not in the results: {', '.join(absent)}"


def _freshness(snap: Snapshot) -> Iterator[Finding]:
    result = snap.validation
    if result is not None and result.head_sha != snap.head_sha:
        yield (
            DecisionCode.HEAD_MOVED,
            f"validated {_short(result.head_sha)} but the head is {_short(snap.head_sha)}; re-validate next run",
        )
    if snap.current_head_sha is not None and snap.current_head_sha != snap.head_sha:
        yield (
            DecisionCode.HEAD_MOVED,
            f"the head moved from {_short(snap.head_sha)} to {_short(snap.current_head_sha)} during validation; "
            "re-validate next run",
        )
    if result is not None and not result.conflicted and snap.current_base_sha not in (None, result.base_sha):
        yield (
            DecisionCode.BASE_MOVED,
            f"validated on {snap.base_ref} at {_short(result.base_sha)} but it is now at "
            f"{_short(snap.current_base_sha)}; re-validate next run",
        )
    if snap.base_already_merged:
        yield (
            DecisionCode.MERGE_LIMIT,
            f"another security update was merged into {snap.base_ref} in this run; re-validate on the new base",
        )


def decide(snapshot: Snapshot, policy: Policy) -> Decision:
    """The decision for one pull request; pure (no I/O, no clock), so the same inputs give the same answer."""
    findings: list[Finding] = [
        *_authorship(snapshot, policy),
        *_paths(snapshot, policy),
        *_update_types(snapshot, policy),
        *_advisories(snapshot, policy),
        *_checks(snapshot, policy),
        *_validation(snapshot, policy),
        *_freshness(snapshot),
    ]
    if not findings:
        worst = max(snapshot.advisories, key=lambda a: a.severity.rank)
        return Decision(
            DecisionCode.MERGE,
            f"trusted bot, {', '.join(b.update_type.value for b in snapshot.bumps)} update fixing "
            f"{worst.severity.value} advisory {worst.ghsa_id}; suite green on {_short(snapshot.head_sha)}",
        )
    code, reason = findings[0]
    return Decision(code, reason, tuple(findings))
