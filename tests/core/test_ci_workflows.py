"""The CI/CD workflows: linted offline (actionlint with shellcheck, zizmor, Checkov), pinned, least privilege with
timeouts, and a job graph that builds before it deploys, keeps prod behind its protected environment and asks for
OIDC only where an AWS role is assumed, a role whose trust in infra/ covers the refs those jobs run on."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import GitHubConfig

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "bin"
WORKFLOWS = {path.stem: path for path in sorted((ROOT / ".github" / "workflows").glob("*.yml"))}
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}\s+#\s*v\d+(\.\d+){0,2}\s*$")
AWS_ROLE_ACTION = "aws-actions/configure-aws-credentials@"


def load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load(WORKFLOWS[name].read_text())
    assert isinstance(data, dict)
    return data


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def test_the_cd_workflows_exist() -> None:
    assert {"ci", "images", "promote", "infra", "security-bot"} <= set(WORKFLOWS)
    assert (ROOT / ".github" / "dependabot.yml").is_file()


def test_actionlint_checks_run_blocks_with_shellcheck() -> None:
    assert shutil.which("shellcheck"), "make setup installs Debian's shellcheck for actionlint"
    done = subprocess.run(
        [str(TOOLS / "actionlint"), *map(str, WORKFLOWS.values())], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_offline_finds_nothing() -> None:
    done = subprocess.run(
        [str(TOOLS / "zizmor"), "--offline", "--format", "plain", str(ROOT / ".github" / "workflows")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_checkov_github_actions_framework_passes() -> None:
    done = subprocess.run(
        [str(TOOLS / "checkov"), "-d", str(ROOT / ".github" / "workflows"), "--framework", "github_actions",
         "--skip-download", "-o", "json", "--quiet"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    report = json.loads(done.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["summary"]["failed"] == 0, report.get("results", {}).get("failed_checks")
    assert report["summary"]["passed"] > 100


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_every_workflow_is_pinned_least_privilege_and_timed(name: str) -> None:
    text = WORKFLOWS[name].read_text()
    for line in text.splitlines():
        if re.match(r"^\s*(-\s*)?uses:", line):
            reference = line.split("uses:", 1)[1].strip()
            assert PINNED.match(reference), f"{name}: {reference} is not pinned by full SHA with its version"
    workflow = load(name)
    assert workflow["permissions"] == {}, f"{name}: top-level permissions must be {{}}"
    assert "concurrency" in workflow, f"{name}: no concurrency group"
    assert "pull_request_target" not in workflow[True], f"{name}: pull_request_target runs untrusted code with secrets"
    for job_name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{name}: job {job_name} must declare its own permissions"
        assert isinstance(job.get("timeout-minutes"), int), f"{name}: job {job_name} has no timeout-minutes"
        for step in steps(job):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, f"{name}: {job_name} keeps the token on disk"
            assert "secrets." not in str(step.get("run", "")), f"{name}: a secret expanded into a script"


def test_images_build_before_staging_is_promoted_and_on_main_only() -> None:
    workflow = load("images")
    assert workflow[True]["push"]["branches"] == ["main"]
    jobs = workflow["jobs"]
    assert jobs["promote-staging"]["needs"] == "build"
    assert set(jobs["build"]["strategy"]["matrix"]["target"]) == {"training", "tuning", "backtesting", "inference"}
    (push,) = [s for s in steps(jobs["build"]) if str(s.get("uses", "")).startswith("docker/build-push-action@")]
    assert push["with"]["push"] is True
    assert push["with"]["tags"].endswith(":${{ github.sha }}")
    assert (push["with"]["sbom"], push["with"]["provenance"]) == (True, "mode=max")
    assert any("cosign sign" in str(s.get("run", "")) for s in steps(jobs["build"]))
    assert any("rlops deploy promote staging" in str(s.get("run", "")) for s in steps(jobs["promote-staging"]))


def test_pull_requests_build_every_image_without_pushing() -> None:
    job = load("ci")["jobs"]["images"]
    assert job["if"] == "github.event_name == 'pull_request'"
    (build,) = [s for s in steps(job) if str(s.get("uses", "")).startswith("docker/build-push-action@")]
    assert build["with"]["push"] is False
    assert "id-token" not in job["permissions"]


def test_prod_is_promoted_only_in_the_protected_environment_from_a_tag_staging_ran() -> None:
    workflow = load("promote")
    assert list(workflow[True]) == ["workflow_dispatch"]
    (job,) = workflow["jobs"].values()
    assert job["environment"] == "production"
    (run,) = [s["run"] for s in steps(job) if "rlops deploy promote" in str(s.get("run", ""))]
    assert 'rlops deploy promote prod --image "$TAG" --from staging' in run
    for other in ("images", "infra", "ci"):
        for job_name, other_job in load(other)["jobs"].items():
            promotes = any("deploy promote prod" in str(s.get("run", "")) for s in steps(other_job))
            assert not promotes, f"{other}: {job_name} promotes prod outside the protected environment"


def test_infra_previews_on_pull_requests_and_updates_staging_before_prod() -> None:
    workflow = load("infra")
    jobs = workflow["jobs"]
    assert set(workflow[True]["pull_request"]["paths"]) >= {"infra/**", "policies/**", "Pulumi*.yaml"}
    assert jobs["up-prod"]["needs"] == "up-staging"
    assert (jobs["up-staging"]["environment"], jobs["up-prod"]["environment"]) == ("infra-staging", "infra-prod")
    for job_name, job in jobs.items():
        (pulumi,) = [s for s in steps(job) if str(s.get("uses", "")).startswith("pulumi/actions@")]
        assert pulumi["with"]["policyPacks"] == "policies/rlops_guard", job_name
        assert pulumi["with"]["command"] == ("preview" if job_name == "preview" else "up")
    assert jobs["preview"]["steps"][-1]["with"]["comment-on-pr"] is True


def test_oidc_only_where_an_aws_role_is_assumed_and_the_push_role_trusts_those_refs() -> None:
    for name in WORKFLOWS:
        for job_name, job in load(name)["jobs"].items():
            assumes = any(str(s.get("uses", "")).startswith(AWS_ROLE_ACTION) for s in steps(job))
            assert (job["permissions"].get("id-token") == "write") == assumes, f"{name}: {job_name}"
    # The image push role is infra/'s GitHub role: its trust names exact subjects for the protected refs.
    branches = load("images")[True]["push"]["branches"]
    for stack in ("dev", "staging", "prod"):
        config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        github = GitHubConfig(
            repository=config["rlops:githubRepository"],
            owner_id=int(config["rlops:githubOwnerId"]),
            repository_id=int(config["rlops:githubRepositoryId"]),
            protected_refs=tuple(config.get("rlops:githubProtectedRefs", ["refs/heads/main"])),
        )
        for branch in branches:
            assert f"repo:{github.repository}:ref:refs/heads/{branch}" in github.subjects, (stack, branch)
