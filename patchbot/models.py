"""Data that crosses the bot's modules: what a pull request looks like, what validation found, what was decided.

Everything here is a frozen value so that `decide` can stay a pure function of its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class UpdateType(StrEnum):
    PATCH = "patch"
    MINOR = "minor"
    MAJOR = "major"
    PRE_1_0 = "pre-1.0"
    UNKNOWN = "unknown"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class ToolStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_RUN = "not run"


class CheckState(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    PENDING = "pending"


class DecisionCode(StrEnum):
    MERGE = "merge"
    UNVERIFIED_AUTHOR = "hold:unverified-author"
    TOUCHES_WORKFLOWS = "hold:touches-workflows"
    HUMAN_PATH = "hold:human-path"
    DRAFT = "hold:draft"
    MAJOR_BUMP = "hold:major-bump"
    PRE_1_0 = "hold:pre-1.0"
    UNKNOWN_UPDATE = "hold:unknown-update-type"
    UPDATE_TYPE_NOT_ALLOWED = "hold:update-type-not-allowed"
    NO_ADVISORY = "hold:no-advisory"
    BELOW_MIN_SEVERITY = "hold:below-min-severity"
    CHECKS_FAILING = "hold:checks-failing"
    CHECKS_PENDING = "hold:checks-pending"
    CONFLICT = "hold:conflict"
    NOT_VALIDATED = "hold:not-validated"
    SUITE_FAILED = "hold:suite-failed"
    TOOL_NOT_RUN = "hold:tool-not-run"
    STILL_VULNERABLE = "hold:still-vulnerable"
    HEAD_MOVED = "hold:head-moved"
    BASE_MOVED = "hold:base-moved"
    MERGE_LIMIT = "hold:merge-limit"

    @property
    def is_merge(self) -> bool:
        return self is DecisionCode.MERGE


class MergeOutcome(StrEnum):
    """What happened after the decision (GitHub has the last word: branch protection, a moved head)."""

    MERGED = "merged"
    MERGING = "approved, merging now"
    HEAD_MOVED = "head moved, not merged"
    BASE_MOVED = "base moved, not merged"
    REFUSED = "refused by GitHub"
    HELD = "held"
    DRY_RUN = "dry run, nothing written"


@dataclass(frozen=True)
class Bump:
    """One dependency a pull request changes, as the PR title/body/commit metadata state it."""

    package: str
    from_version: str | None
    to_version: str | None
    update_type: UpdateType


@dataclass(frozen=True)
class Advisory:
    """One open Dependabot alert: what is vulnerable, how badly, and from which version it is fixed."""

    alert_number: int
    ghsa_id: str
    cve_id: str | None
    severity: Severity
    package: str
    ecosystem: str
    vulnerable_range: str
    first_patched: str | None
    manifest_path: str

    @property
    def ids(self) -> str:
        return f"{self.ghsa_id} ({self.cve_id})" if self.cve_id else self.ghsa_id


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    author_login: str | None
    verified: bool


@dataclass(frozen=True)
class CheckInfo:
    """A CI status or check run on the PR head (the bot's own status is left out)."""

    name: str
    state: CheckState


@dataclass(frozen=True)
class ToolResult:
    name: str
    status: ToolStatus
    exit_code: int | None
    duration_s: float
    version: str
    detail: str

    def stable(self) -> tuple[str, str, str]:
        """What identifies the result across reruns (durations and versions vary, outcomes should not)."""
        return (self.name, self.status.value, self.detail)


@dataclass(frozen=True)
class Validation:
    """The outcome of merging the PR head into the base on `security/<pr>-<slug>` and running the suite."""

    branch: str
    base_sha: str
    head_sha: str
    merge_sha: str | None
    conflict_files: tuple[str, ...]
    tools: tuple[ToolResult, ...]
    # The bumped and advised packages as installed in the validation venv (read from its metadata).
    installed: tuple[tuple[str, str], ...] = ()
    isolation: str = ""

    @property
    def conflicted(self) -> bool:
        return self.merge_sha is None


@dataclass(frozen=True)
class Snapshot:
    """Everything `decide` needs about one security pull request, gathered before any write."""

    repo: str
    number: int
    title: str
    url: str
    author: str
    author_is_bot: bool
    labels: tuple[str, ...]
    draft: bool
    base_ref: str
    base_sha: str
    head_ref: str
    head_sha: str
    mergeable: bool | None
    files: tuple[str, ...]
    commits: tuple[CommitInfo, ...]
    bumps: tuple[Bump, ...]
    advisories: tuple[Advisory, ...]
    checks: tuple[CheckInfo, ...]
    validation: Validation | None = None
    current_head_sha: str | None = None
    current_base_sha: str | None = None
    base_already_merged: bool = False

    @property
    def slug(self) -> str:
        cleaned = "".join(ch if ch.isalnum() else "-" for ch in self.title.lower())
        parts = [p for p in cleaned.split("-") if p]
        return "-".join(parts)[:48].strip("-") or "update"

    @property
    def branch(self) -> str:
        return f"security/{self.number}-{self.slug}"


@dataclass(frozen=True)
class Decision:
    code: DecisionCode
    reason: str
    # Every rule that failed, in evaluation order; `code`/`reason` are the first of them.
    all_reasons: tuple[tuple[DecisionCode, str], ...] = field(default=())

    @property
    def merge(self) -> bool:
        return self.code.is_merge
