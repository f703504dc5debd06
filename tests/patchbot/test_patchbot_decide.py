"""Table-driven tests of `decide`: one green snapshot, one change per row, and the decision code it must give."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from patchbot.decide import decide
from patchbot.models import (
    Advisory,
    Bump,
    CheckInfo,
    CheckState,
    CommitInfo,
    DecisionCode,
    Severity,
    Snapshot,
    ToolResult,
    ToolStatus,
    UpdateType,
    Validation,
)
from patchbot.policy import Policy

HEAD = "a" * 40
BASE = "b" * 40
POLICY = Policy(required_checks=("ci/tests",), human_paths=("infra/**",), allow_missing_tools=frozenset({"pip-audit"}))


def tool(name: str, status: ToolStatus = ToolStatus.PASSED, detail: str = "ok") -> ToolResult:
    return ToolResult(name, status, 0 if status is ToolStatus.PASSED else 1, 0.1, f"{name} 1.0", detail)


GREEN_TOOLS = (
    tool("pytest"),
    tool("pip-audit", ToolStatus.NOT_RUN, "no answer"),
    tool("bandit"),
    tool("checkov"),
    tool("version-range"),
)
VALIDATION = Validation("security/7-bump-requests", BASE, HEAD, "c" * 40, (), GREEN_TOOLS)
ADVISORY = Advisory(3, "GHSA-aaaa-bbbb-cccc", "CVE-2026-1", Severity.HIGH, "requests", "pip", "< 2.31.1", "2.31.1",
                    "requirements.txt")  # fmt: skip
GREEN = Snapshot(
    repo="acme/trader",
    number=7,
    title="Bump requests from 2.31.0 to 2.31.1",
    url="https://github.invalid/acme/trader/pull/7",
    author="dependabot[bot]",
    author_is_bot=True,
    labels=(),
    draft=False,
    base_ref="main",
    base_sha=BASE,
    head_ref="dependabot/pip/requests-2.31.1",
    head_sha=HEAD,
    mergeable=True,
    files=("requirements.txt",),
    commits=(CommitInfo(HEAD, "dependabot[bot]", True),),
    bumps=(Bump("requests", "2.31.0", "2.31.1", UpdateType.PATCH),),
    advisories=(ADVISORY,),
    checks=(CheckInfo("ci/tests", CheckState.SUCCESS),),
    validation=VALIDATION,
    current_head_sha=HEAD,
    current_base_sha=BASE,
)


def with_tools(*tools: ToolResult) -> Callable[[Snapshot], Snapshot]:
    return lambda s: replace(s, validation=replace(VALIDATION, tools=tools))


def bump(kind: UpdateType, old: str = "2.31.0", new: str = "3.0.0") -> Callable[[Snapshot], Snapshot]:
    return lambda s: replace(s, bumps=(Bump("requests", old, new, kind),))


CASES: list[tuple[str, Callable[[Snapshot], Snapshot], Policy, DecisionCode]] = [
    ("green", lambda s: s, POLICY, DecisionCode.MERGE),
    ("human author", lambda s: replace(s, author="mallory", author_is_bot=False), POLICY,
     DecisionCode.UNVERIFIED_AUTHOR),
    ("look-alike user account", lambda s: replace(s, author_is_bot=False), POLICY, DecisionCode.UNVERIFIED_AUTHOR),
    ("commit by someone else", lambda s: replace(s, commits=(*s.commits, CommitInfo("d" * 40, "mallory", True))),
     POLICY, DecisionCode.UNVERIFIED_AUTHOR),
    ("unsigned commit", lambda s: replace(s, commits=(CommitInfo(HEAD, "dependabot[bot]", False),)), POLICY,
     DecisionCode.UNVERIFIED_AUTHOR),
    ("no commits", lambda s: replace(s, commits=()), POLICY, DecisionCode.UNVERIFIED_AUTHOR),
    ("workflow change", lambda s: replace(s, files=(".github/workflows/ci.yml",)), POLICY,
     DecisionCode.TOUCHES_WORKFLOWS),
    ("guarded path", lambda s: replace(s, files=("infra/stack.py",)), POLICY, DecisionCode.HUMAN_PATH),
    ("draft", lambda s: replace(s, draft=True), POLICY, DecisionCode.DRAFT),
    ("major", bump(UpdateType.MAJOR), POLICY, DecisionCode.MAJOR_BUMP),
    ("pre-1.0", bump(UpdateType.PRE_1_0, "0.4.0", "0.5.0"), POLICY, DecisionCode.PRE_1_0),
    ("unknown type", bump(UpdateType.UNKNOWN, "abc", "def"), POLICY, DecisionCode.UNKNOWN_UPDATE),
    ("no bumps parsed", lambda s: replace(s, bumps=()), POLICY, DecisionCode.UNKNOWN_UPDATE),
    ("minor when only patch allowed", bump(UpdateType.MINOR, "2.31.0", "2.32.0"),
     replace(POLICY, allowed_update_types=frozenset({UpdateType.PATCH})), DecisionCode.UPDATE_TYPE_NOT_ALLOWED),
    ("no advisory", lambda s: replace(s, advisories=()), POLICY, DecisionCode.NO_ADVISORY),
    ("low severity", lambda s: replace(s, advisories=(replace(ADVISORY, severity=Severity.LOW),)),
     replace(POLICY, min_severity=Severity.MEDIUM), DecisionCode.BELOW_MIN_SEVERITY),
    ("red CI", lambda s: replace(s, checks=(CheckInfo("ci/tests", CheckState.FAILURE),)), POLICY,
     DecisionCode.CHECKS_FAILING),
    ("red optional check", lambda s: replace(s, checks=(*s.checks, CheckInfo("lint", CheckState.FAILURE))), POLICY,
     DecisionCode.CHECKS_FAILING),
    ("running CI", lambda s: replace(s, checks=(CheckInfo("ci/tests", CheckState.PENDING),)), POLICY,
     DecisionCode.CHECKS_PENDING),
    ("required check never reported", lambda s: replace(s, checks=()), POLICY, DecisionCode.CHECKS_PENDING),
    ("default policy: no check has reported yet", lambda s: replace(s, checks=()),
     replace(Policy(), allow_missing_tools=frozenset({"pip-audit"})), DecisionCode.CHECKS_PENDING),
    ("default policy: a pending status holds", lambda s: replace(s, checks=(*s.checks, CheckInfo("deploy",
     CheckState.PENDING))), replace(Policy(), allow_missing_tools=frozenset({"pip-audit"})),
     DecisionCode.CHECKS_PENDING),
    ("default policy: every reported check green", lambda s: s,
     replace(Policy(), allow_missing_tools=frozenset({"pip-audit"})), DecisionCode.MERGE),
    ("GitHub sees a conflict", lambda s: replace(s, mergeable=False), POLICY, DecisionCode.CONFLICT),
    ("local merge conflict", lambda s: replace(s, validation=replace(VALIDATION, merge_sha=None,
     conflict_files=("requirements.txt",), tools=())), POLICY, DecisionCode.CONFLICT),
    ("not validated", lambda s: replace(s, validation=None, current_head_sha=None, current_base_sha=None), POLICY,
     DecisionCode.NOT_VALIDATED),
    ("pytest red", with_tools(tool("pytest", ToolStatus.FAILED), *GREEN_TOOLS[1:]), POLICY,
     DecisionCode.SUITE_FAILED),
    ("bandit found something new", with_tools(*GREEN_TOOLS[:2], tool("bandit", ToolStatus.FAILED), *GREEN_TOOLS[3:]),
     POLICY, DecisionCode.SUITE_FAILED),
    ("pip-audit not run, not allowed", lambda s: s, replace(POLICY, allow_missing_tools=frozenset()),
     DecisionCode.TOOL_NOT_RUN),
    ("checkov missing from results", with_tools(*GREEN_TOOLS[:3], GREEN_TOOLS[4]), POLICY, DecisionCode.TOOL_NOT_RUN),
    ("still vulnerable", with_tools(*GREEN_TOOLS[:4], tool("version-range", ToolStatus.FAILED, "2.31.0 inside")),
     POLICY, DecisionCode.STILL_VULNERABLE),
    ("version check absent", with_tools(*GREEN_TOOLS[:4]), POLICY, DecisionCode.STILL_VULNERABLE),
    ("version check cannot be waived", with_tools(*GREEN_TOOLS[:4], tool("version-range", ToolStatus.NOT_RUN)),
     POLICY, DecisionCode.STILL_VULNERABLE),
    ("validated an older head", lambda s: replace(s, validation=replace(VALIDATION, head_sha="e" * 40)), POLICY,
     DecisionCode.HEAD_MOVED),
    ("head moved during validation", lambda s: replace(s, current_head_sha="f" * 40), POLICY,
     DecisionCode.HEAD_MOVED),
    ("base moved after validation", lambda s: replace(s, current_base_sha="9" * 40), POLICY,
     DecisionCode.BASE_MOVED),
    ("second merge into the same base", lambda s: replace(s, base_already_merged=True), POLICY,
     DecisionCode.MERGE_LIMIT),
]  # fmt: skip


@pytest.mark.parametrize(("change", "policy", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decide(change: Callable[[Snapshot], Snapshot], policy: Policy, expected: DecisionCode) -> None:
    decision = decide(change(GREEN), policy)
    assert decision.code is expected, decision
    assert decision.merge is (expected is DecisionCode.MERGE)
    assert decision.reason
    if expected is not DecisionCode.MERGE:
        assert decision.all_reasons[0] == (decision.code, decision.reason)


def test_the_table_covers_every_decision_code() -> None:
    assert {case[3] for case in CASES} == set(DecisionCode)


def test_every_failing_rule_is_reported_and_the_first_one_decides() -> None:
    snap = replace(GREEN, author="mallory", author_is_bot=False, files=(".github/workflows/ci.yml",), draft=True)
    decision = decide(snap, POLICY)
    codes = [code for code, _ in decision.all_reasons]
    assert codes == [DecisionCode.UNVERIFIED_AUTHOR, DecisionCode.TOUCHES_WORKFLOWS, DecisionCode.DRAFT]
    assert decision.code is DecisionCode.UNVERIFIED_AUTHOR


def test_decide_is_pure() -> None:
    assert decide(GREEN, POLICY) == decide(GREEN, POLICY)
    assert GREEN.validation is VALIDATION


def test_merge_reason_names_the_advisory_and_the_tested_head() -> None:
    decision = decide(GREEN, POLICY)
    assert "GHSA-aaaa-bbbb-cccc" in decision.reason
    assert HEAD[:7] in decision.reason


def test_branch_name_is_security_number_slug() -> None:
    assert GREEN.branch == "security/7-bump-requests-from-2-31-0-to-2-31-1"
    assert replace(GREEN, title="!!!").branch == "security/7-update"
