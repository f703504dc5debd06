"""Bad input and a hostile API: clear one-line errors, and nothing half-done on GitHub or in the memory bank."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from patchbot_fake_github import git
from patchbot_project import TOOLS_BIN, Project, make_project

from patchbot.github_api import Credentials
from patchbot.models import DecisionCode, MergeOutcome
from rlops_core.errors import RlopsError

RATE_LIMITED = "API rate limit exceeded for installation ID 42."


def green(project: Project) -> None:
    project.fake.add_alert(1, "requests", "< 2.31.1", "2.31.1")
    project.bump_requests()


def nothing_written(project: Project) -> bool:
    return project.fake.writes() == [] and not (project.bank / "patches.md").exists()


def test_malformed_policy_on_the_default_branch_names_the_field(tmp_path: Path) -> None:
    for project in make_project(tmp_path, "version: 1\nallowed_update_types: [patch, major]\n"):
        green(project)
        with pytest.raises(RlopsError) as caught:
            project.run()
        assert str(caught.value).startswith(
            "policy .github/patchbot.yml@main: field 'allowed_update_types' lists 'major'"
        )
        assert nothing_written(project)


def test_local_policy_file_overrides_and_is_checked(project: Project, tmp_path: Path) -> None:
    green(project)
    local = tmp_path / "policy.yml"
    local.write_text("min_severity: catastrophic\n")
    with pytest.raises(RlopsError, match="field 'min_severity' must be one of low, medium, high, critical"):
        project.run(policy_file=local)
    local.write_text("allowed_update_types: [minor]\nsuite: [pytest]\n")
    (pr,) = project.run(policy_file=local, apply=False).results
    assert pr.decision.code is DecisionCode.UPDATE_TYPE_NOT_ALLOWED
    assert nothing_written(project)


def test_unknown_repository(project: Project) -> None:
    with pytest.raises(
        RlopsError, match=r"^repository acme/nope not found, or these credentials cannot see it \(404\)$"
    ):
        project.run(repo="acme/nope")
    assert nothing_written(project)


def test_malformed_repository_name(project: Project) -> None:
    with pytest.raises(RlopsError, match="--repo must look like OWNER/NAME"):
        project.run(repo="not a repo")


def test_revoked_token(project: Project) -> None:
    green(project)
    with pytest.raises(
        RlopsError, match=r"GitHub rejected the credentials \(401 Bad credentials\); the token is revoked"
    ):
        project.run(creds=Credentials(token="revoked-token"))
    assert nothing_written(project)


def test_no_credentials_at_all(project: Project) -> None:
    with pytest.raises(RlopsError, match="no GitHub credentials: set PATCHBOT_APP_ID"):
        project.run(creds=Credentials())


def test_token_without_dependabot_alert_access(project: Project) -> None:
    green(project)
    project.fake.fail("GET", r"/dependabot/alerts$", 403, "Resource not accessible by integration", {}, times=99)
    with pytest.raises(RlopsError, match=r"needs 'Dependabot alerts: read'.*forbidden \(403"):
        project.run()
    assert nothing_written(project)


def test_primary_rate_limit_stops_before_any_write(project: Project) -> None:
    green(project)
    reset = str(int(time.time()) + 3600)
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
    project.fake.fail("GET", r"/pulls/1/files$", 403, RATE_LIMITED, headers, times=99)
    with pytest.raises(RlopsError, match=r"rate limit exceeded \(403, resets at \d{4}-\d\d-\d\dT"):
        project.run()
    assert nothing_written(project)
    assert project.fake.pulls[1].state == "open"


def test_secondary_rate_limit_429_is_retried_after_retry_after(project: Project) -> None:
    project.fake.add_alert(1, "requests", "< 2.31.1", "3.0.0")
    project.bump_requests(new="3.0.0", kind="major")
    project.fake.fail("GET", r"/pulls$", 429, "You have exceeded a secondary rate limit.", {"Retry-After": "1"}, 1)

    (pr,) = project.run().results

    assert pr.decision.code is DecisionCode.MAJOR_BUMP
    assert len(project.fake.comments[1]) == 1
    refused = [e for e in project.fake.log if e.method.startswith("GET (refused 429)")]
    assert len(refused) == 1


def test_rate_limited_comment_is_retried_without_double_posting(project: Project) -> None:
    green(project)
    project.fake.fail("POST", r"/issues/1/comments$", 429, "secondary rate limit", {"Retry-After": "1"}, times=1)

    (pr,) = project.run().results

    assert pr.report.outcome is MergeOutcome.MERGED
    assert len(project.fake.comments[1]) == 1
    assert [e.method for e in project.fake.log].count("POST (refused 429)") == 1


def test_persistent_rate_limit_on_a_write_never_merges(project: Project) -> None:
    green(project)
    project.fake.fail("POST", r"/issues/1/comments$", 429, "secondary rate limit", {"Retry-After": "1"}, times=99)

    with pytest.raises(RlopsError, match=r"reporting on acme/trader#1: GitHub (rate limit|kept refusing)"):
        project.run(retries=1)

    assert project.fake.pulls[1].state == "open"
    assert project.fake.reviews == {}
    assert "requests==2.31.0" in project.remote_file("requirements.txt")
    assert not (project.bank / "patches.md").exists()


def test_server_error_on_a_write_is_not_repeated(project: Project) -> None:
    green(project)
    project.fake.fail("POST", r"/issues/1/comments$", 502, "Bad Gateway", {}, times=1)

    with pytest.raises(RlopsError, match="GitHub answered 502"):
        project.run()

    # GitHub may have applied the first POST; repeating it could post twice, so the bot stops instead.
    assert [e.method for e in project.fake.log].count("POST (refused 502)") == 1
    assert project.fake.pulls[1].state == "open"


GOOD_TOKEN = "good-token"


def _cli(project: Project, *args: str, token: str = GOOD_TOKEN) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB", "PATCHBOT"))}
    env["GITHUB_TOKEN"] = token
    rlops = Path(sys.executable).with_name("rlops")
    common = ["--repo", "acme/trader", "--api-url", project.fake.url, "--tools-bin", str(TOOLS_BIN)]
    if args[0] == "run":
        common += ["--state-dir", str(project.state_dir)]
    return subprocess.run(
        [str(rlops), "patchbot", *args, *common], cwd=project.root, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_reports_errors_as_one_line(project: Project) -> None:
    done = _cli(project, "run", token="revoked-token")
    assert done.returncode == 1
    assert done.stderr.startswith("error: reading the token's user: GitHub rejected the credentials (401")
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_dry_run_and_explain(project: Project) -> None:
    project.fake.add_alert(1, "requests", "< 2.31.1", "3.0.0")
    project.bump_requests(new="3.0.0", kind="major")

    dry = _cli(project, "run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run (nothing written; pass --apply to act)" in dry.stdout
    assert "#1 hold:major-bump" in dry.stdout

    shutil.rmtree(project.state_dir)
    explained = _cli(project, "explain", "1")
    assert explained.returncode == 0, explained.stderr
    # explain writes nothing at all: no lock file, no state folder, no pip cache.
    assert not project.state_dir.exists()
    assert not (project.root / ".rlops").exists()
    assert "decision: hold:major-bump: requests 2.31.0 -> 3.0.0 is a major update" in explained.stdout
    assert "<!-- patchbot:report -->" in explained.stdout
    assert project.fake.writes() == []
    assert "security/" not in git(project.bare, "for-each-ref")

    missing = _cli(project, "explain", "77")
    assert missing.returncode == 1
    assert "pull request #77 is not an open security update in acme/trader" in missing.stderr


def test_damaged_memory_bank_stops_the_run_before_any_write(project: Project) -> None:
    green(project)
    (project.bank / "patches.md").write_text("no title line\n")

    with pytest.raises(RlopsError, match=r"patches\.md:1: first line must be a '# ' title"):
        project.run()

    assert project.fake.writes() == []
    assert project.fake.pulls[1].state == "open"
