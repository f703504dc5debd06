"""Policy parsing, version arithmetic, the token-free suite environment, retries and the run lock."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from patchbot.environment import default_install, local_paths, pip_sources, read_installed
from patchbot.github_api import APP_TOKEN_PERMISSIONS, Credentials, _retry
from patchbot.lock import repo_lock
from patchbot.manifests import all_pins
from patchbot.models import Advisory, Severity, ToolStatus, UpdateType
from patchbot.policy import Policy, parse_policy
from patchbot.validate import ToolConfig, clean_env, git_auth_env
from patchbot.versions import classify, parse_bumps, parse_range, version_range_check
from rlops_core.errors import RlopsError


def test_policy_fields_are_read() -> None:
    policy = parse_policy(
        "version: 2\nallowed_update_types: [patch]\nmin_severity: HIGH\nrequired_checks: [ci]\n"
        "human_paths: ['infra/**']\nmerge_method: merge\nallow_missing_tools: [pip-audit]\n",
        ".github/patchbot.yml@main",
    )
    assert policy.allowed_update_types == frozenset({UpdateType.PATCH})
    assert policy.min_severity is Severity.HIGH
    assert policy.required_checks == ("ci",)
    assert policy.human_paths == ("infra/**",)
    assert policy.merge_method == "merge"
    assert policy.allow_missing_tools == frozenset({"pip-audit"})
    assert policy.version.startswith("2 (")


def test_empty_policy_file_means_defaults() -> None:
    policy = parse_policy("", "p.yml")
    assert policy.allowed_update_types == Policy().allowed_update_types
    assert policy.merge_method == "squash"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("allowed_update_types: [patch, major]", "allowed_update_types"),
        ("allowed_update_types: [tiny]", "allowed_update_types"),
        ("allowed_update_types: patch", "allowed_update_types"),
        ("min_severity: severe", "min_severity"),
        ("required_checks: [1, 2]", "required_checks"),
        ("merge_method: rebase-and-pray", "merge_method"),
        ("suite: [pytest, trivy]", "suite"),
        ("allow_missing_tools: [version-range]", "allow_missing_tools"),
        ("automerge_everything: true", "automerge_everything"),
        ("version: [1]", "version"),
    ],
)
def test_malformed_policy_names_the_field(text: str, field: str) -> None:
    with pytest.raises(RlopsError, match=re.escape(f"policy p.yml@main: field '{field}'")):
        parse_policy(text, "p.yml@main")


@pytest.mark.parametrize("text", ["a: [unclosed", "- just\n- a list\n"])
def test_policy_that_is_not_a_mapping_is_rejected(text: str) -> None:
    with pytest.raises(RlopsError, match=r"policy p\.yml"):
        parse_policy(text, "p.yml")


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        ("2.31.0", "2.31.1", UpdateType.PATCH),
        ("2.31.0", "2.32.0", UpdateType.MINOR),
        ("2.31.0", "3.0.0", UpdateType.MAJOR),
        ("0.4.1", "0.4.2", UpdateType.PRE_1_0),
        ("0.9.0", "1.0.0", UpdateType.PRE_1_0),
        ("2.0.0", "1.9.0", UpdateType.UNKNOWN),
        ("2.0.0", "2.0.1rc1", UpdateType.UNKNOWN),
        ("latest", "2.0", UpdateType.UNKNOWN),
        (None, "2.0", UpdateType.UNKNOWN),
    ],
)
def test_classify(old: str | None, new: str, kind: UpdateType) -> None:
    assert classify(old, new) is kind


def test_dependabot_metadata_can_only_make_the_type_stricter() -> None:
    message = (
        "Bump x\n\n---\nupdated-dependencies:\n- dependency-name: Requests\n"
        "  update-type: version-update:semver-major\n...\n"
    )
    (only,) = parse_bumps("chore(deps): bump requests from 2.31.0 to 2.31.1 in /app", "", [message])
    assert (only.package, only.from_version, only.to_version, only.update_type) == (
        "requests",
        "2.31.0",
        "2.31.1",
        UpdateType.MAJOR,
    )


def test_renovate_and_grouped_dependabot_bodies() -> None:
    renovate = "| Package | Change |\n|---|---|\n| [urllib3](https://x) | `1.26.17` -> `1.26.18` |\n"
    assert [(b.package, b.update_type) for b in parse_bumps("Update dependency urllib3 [SECURITY]", renovate, [])] == [
        ("urllib3", UpdateType.PATCH)
    ]
    grouped = "Updates `idna` from 3.4 to 3.7\nUpdates `certifi` from 2023.7.22 to 2024.2.2\n"
    kinds = {b.package: b.update_type for b in parse_bumps("Bump the pip group with 2 updates", grouped, [])}
    assert kinds == {"idna": UpdateType.MINOR, "certifi": UpdateType.MAJOR}


def test_github_ranges_read_as_specifiers() -> None:
    assert "2.31.0" in parse_range("< 2.31.1")
    assert "2.31.1" not in parse_range("< 2.31.1")
    assert "1.5" in parse_range(">= 1.0, < 2.0")
    assert "1.2.3" in parse_range("= 1.2.3")
    with pytest.raises(ValueError, match="cannot read"):
        parse_range("before 2.0")


def _advisory(package: str = "requests", vulnerable: str = "< 2.31.1") -> Advisory:
    return Advisory(1, "GHSA-x", None, Severity.HIGH, package, "pip", vulnerable, "2.31.1", "requirements.txt")


def test_version_range_check(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("requests==2.31.1  # security fix\nidna>=3\n")
    assert version_range_check(tmp_path, [_advisory()]).status is ToolStatus.PASSED
    still = version_range_check(tmp_path, [_advisory(vulnerable="<= 2.31.1")])
    assert still.status is ToolStatus.FAILED
    assert "still inside" in still.detail
    unpinned = version_range_check(tmp_path, [_advisory("idna")])
    assert unpinned.status is ToolStatus.FAILED
    assert "neither installed nor pinned exactly" in unpinned.detail
    assert version_range_check(tmp_path, []).status is ToolStatus.FAILED


def test_version_range_check_reads_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["requests==2.32.0"]\n')
    advisory = Advisory(1, "GHSA-x", None, Severity.HIGH, "requests", "pip", "< 2.32.0", "2.32.0", "pyproject.toml")
    assert version_range_check(tmp_path, [advisory]).status is ToolStatus.PASSED


def test_installed_version_decides_over_the_pin_and_constraints_count(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["requests"]\n')
    (tmp_path / "constraints.txt").write_text("requests==2.31.0\n")
    assert all_pins(tmp_path)["requests"].manifest == "constraints.txt"
    pinned_only = version_range_check(tmp_path, [_advisory()])
    assert pinned_only.status is ToolStatus.FAILED
    assert "requests 2.31.0 (constraints.txt)" in pinned_only.detail
    installed = version_range_check(tmp_path, [_advisory()], {"Requests": "2.31.1"})
    assert installed.status is ToolStatus.PASSED
    assert installed.detail == "requests 2.31.1 (installed; constraints.txt pins 2.31.0) is outside < 2.31.1"


def test_default_install_for_a_plain_project(tmp_path: Path) -> None:
    assert default_install(tmp_path) == ("pytest",)
    for name in ("requirements.txt", "requirements-dev.txt", "constraints.txt", "pyproject.toml"):
        (tmp_path / name).write_text("")
    assert default_install(tmp_path) == ("-c constraints.txt -r requirements-dev.txt -r requirements.txt . pytest",)


def test_pip_sources_pass_index_settings_but_refuse_credentials(tmp_path: Path) -> None:
    environ = {"PIP_FIND_LINKS": f"{tmp_path} https://mirror.invalid/wheels", "PIP_NO_INDEX": "1", "HOME": "/x"}
    assert pip_sources(environ) == {"PIP_FIND_LINKS": environ["PIP_FIND_LINKS"], "PIP_NO_INDEX": "1"}
    assert local_paths(pip_sources(environ)) == (tmp_path.resolve(),)
    with pytest.raises(RlopsError, match="PIP_INDEX_URL holds credentials in a URL"):
        pip_sources({"PIP_INDEX_URL": "https://user:secret@pypi.internal/simple"})


def test_read_installed_parses_metadata_and_skips_the_local_project(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    for name, version, local in (("Requests", "2.31.1", False), ("trader", "0.1", True)):
        info = site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nbody\n")
        if local:
            (info / "direct_url.json").write_text('{"url": "file:///src", "dir_info": {"editable": true}}')
    assert read_installed(tmp_path) == {"requests": "2.31.1"}


def test_suite_environment_has_no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_secret")
    monkeypatch.setenv("PATCHBOT_APP_PRIVATE_KEY", "-----BEGIN")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    env = clean_env(tmp_path)
    assert env["HOME"] == str(tmp_path)
    assert "ghs_secret" not in " ".join(env.values())
    assert not [name for name in env if "TOKEN" in name or "SECRET" in name or "KEY" in name]


def test_fetch_credentials_are_one_shot_git_config() -> None:
    env = git_auth_env("ghs_abc")
    assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    assert "ghs_abc" not in env["GIT_CONFIG_VALUE_0"]
    assert git_auth_env(None) == {}


def test_tools_are_found_in_the_configured_folder_first(tmp_path: Path) -> None:
    program = tmp_path / "bandit"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    assert ToolConfig(tmp_path).find("bandit") == program
    assert ToolConfig(tmp_path).find("surely-not-installed-tool") is None


def test_writes_are_retried_only_after_a_rate_limit_refusal() -> None:
    retry = _retry(max_wait_s=5, total=3, backoff=0)
    assert retry.is_retry("POST", 429)
    assert retry.is_retry("POST", 403)
    assert not retry.is_retry("POST", 502)
    assert not retry.is_retry("PUT", 500)
    assert retry.is_retry("GET", 502)


def test_credentials_from_env() -> None:
    creds = Credentials.from_env(
        {"PATCHBOT_APP_ID": "12", "PATCHBOT_APP_PRIVATE_KEY": "pem", "PATCHBOT_INSTALLATION_ID": "9"}
    )
    assert (creds.app_id, creds.installation_id, creds.token) == ("12", 9, None)
    assert Credentials.from_env({"GITHUB_TOKEN": "t"}).token == "t"
    assert "administration" not in APP_TOKEN_PERMISSIONS
    assert APP_TOKEN_PERMISSIONS["vulnerability_alerts"] == "read"


def test_one_run_per_repository(tmp_path: Path) -> None:
    with repo_lock(tmp_path, "acme/trader"):
        with (
            pytest.raises(RlopsError, match="another patchbot run holds the lock for acme/trader"),
            repo_lock(tmp_path, "acme/trader"),
        ):
            pytest.fail("a second holder got the lock")
        with repo_lock(tmp_path, "acme/other"):
            pass
    with repo_lock(tmp_path, "acme/trader"):
        pass
