"""The merge policy: a YAML file read from the repository's default branch (so a pull request cannot loosen it).

Every field is checked; a malformed file is an error naming the field, never a silent fallback to defaults.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from patchbot.models import Severity, UpdateType
from rlops_core.errors import RlopsError

DEFAULT_POLICY_PATH = ".github/patchbot.yml"
SUITE_TOOLS = ("pytest", "pip-audit", "bandit", "checkov")
VERSION_CHECK = "version-range"
MERGE_METHODS = ("squash", "merge", "rebase")
DEFAULT_TEST_COMMAND = "python -m pytest -q -p no:cacheprovider"
# Every check run and commit status on the head, and at least one of them: CI that has not reported yet holds.
ALL_CHECKS = "*"
# These never auto-merge whatever the file says: a policy asking for them is a mistake worth stopping on.
NEVER_AUTO = frozenset({UpdateType.MAJOR, UpdateType.PRE_1_0, UpdateType.UNKNOWN})


@dataclass(frozen=True)
class Policy:
    version: str = "default"
    source: str = "built-in defaults"
    allowed_update_types: frozenset[UpdateType] = frozenset({UpdateType.PATCH, UpdateType.MINOR})
    min_severity: Severity = Severity.LOW
    required_checks: tuple[str, ...] = (ALL_CHECKS,)
    human_paths: tuple[str, ...] = ()
    merge_method: str = "squash"
    suite: tuple[str, ...] = SUITE_TOOLS
    allow_missing_tools: frozenset[str] = frozenset()
    trusted_authors: tuple[str, ...] = ("dependabot[bot]", "renovate[bot]")
    security_label: str = "security"
    needs_human_label: str = "needs-human"
    pytest_args: tuple[str, ...] = ()
    # pip install arguments, one pip call per entry, run in a fresh venv; empty means the plain-project default.
    install: tuple[str, ...] = ()
    test_command: str = DEFAULT_TEST_COMMAND
    checkov_frameworks: tuple[str, ...] = ("github_actions", "dockerfile", "kubernetes", "secrets")
    bandit_severity: Severity = Severity.MEDIUM


_KNOWN = {
    "version",
    "allowed_update_types",
    "min_severity",
    "required_checks",
    "human_paths",
    "merge_method",
    "suite",
    "allow_missing_tools",
    "trusted_authors",
    "security_label",
    "needs_human_label",
    "pytest_args",
    "install",
    "test_command",
    "checkov_frameworks",
    "bandit_severity",
}


class _Fields:
    def __init__(self, data: Mapping[str, Any], source: str) -> None:
        self.data = data
        self.source = source

    def fail(self, name: str, message: str) -> RlopsError:
        return RlopsError(f"policy {self.source}: field '{name}' {message}")

    def strings(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        if name not in self.data:
            return default
        value = self.data[name]
        if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
            raise self.fail(name, f"must be a list of non-empty strings, got {value!r}")
        return tuple(item.strip() for item in value)

    def string(self, name: str, default: str) -> str:
        if name not in self.data:
            return default
        value = self.data[name]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, f"must be a non-empty string, got {value!r}")
        return value.strip()

    def severity(self, name: str, default: Severity) -> Severity:
        value = self.string(name, default.value).lower()
        try:
            return Severity(value)
        except ValueError:
            allowed = ", ".join(s.value for s in Severity)
            raise self.fail(name, f"must be one of {allowed}, got {value!r}") from None


def parse_policy(text: str, source: str) -> Policy:
    """Parse and check a policy file's text; `source` names it in every error (path and ref)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RlopsError(f"policy {source}: not valid YAML ({exc})".replace("\n", " ")) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RlopsError(f"policy {source}: the top level must be a mapping of fields, got {type(data).__name__}")
    fields = _Fields(data, source)
    unknown = sorted(str(key) for key in data if key not in _KNOWN)
    if unknown:
        raise fields.fail(unknown[0], f"is not a known field (known: {', '.join(sorted(_KNOWN))})")

    raw_version = data.get("version", 1)
    if not isinstance(raw_version, int | str) or isinstance(raw_version, bool):
        raise fields.fail("version", f"must be a number or string, got {raw_version!r}")
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]

    types: set[UpdateType] = set()
    for item in fields.strings("allowed_update_types", ("patch", "minor")):
        try:
            kind = UpdateType(item)
        except ValueError:
            raise fields.fail("allowed_update_types", f"has unknown update type {item!r} (use patch, minor)") from None
        if kind in NEVER_AUTO:
            raise fields.fail("allowed_update_types", f"lists {item!r}, which never merges automatically")
        types.add(kind)

    merge_method = fields.string("merge_method", "squash")
    if merge_method not in MERGE_METHODS:
        raise fields.fail("merge_method", f"must be one of {', '.join(MERGE_METHODS)}, got {merge_method!r}")

    suite = fields.strings("suite", SUITE_TOOLS)
    for tool in suite:
        if tool not in SUITE_TOOLS:
            raise fields.fail("suite", f"has unknown tool {tool!r} (known: {', '.join(SUITE_TOOLS)})")
    missing_ok = fields.strings("allow_missing_tools", ())
    for tool in missing_ok:
        if tool == VERSION_CHECK:
            raise fields.fail("allow_missing_tools", "cannot list the bot's own version-range check")
        if tool not in SUITE_TOOLS:
            raise fields.fail("allow_missing_tools", f"has unknown tool {tool!r} (known: {', '.join(SUITE_TOOLS)})")

    return Policy(
        version=f"{raw_version} ({digest})",
        source=source,
        allowed_update_types=frozenset(types),
        min_severity=fields.severity("min_severity", Severity.LOW),
        required_checks=fields.strings("required_checks", (ALL_CHECKS,)),
        human_paths=fields.strings("human_paths", ()),
        merge_method=merge_method,
        suite=suite,
        allow_missing_tools=frozenset(missing_ok),
        trusted_authors=fields.strings("trusted_authors", ("dependabot[bot]", "renovate[bot]")),
        security_label=fields.string("security_label", "security"),
        needs_human_label=fields.string("needs_human_label", "needs-human"),
        pytest_args=fields.strings("pytest_args", ()),
        install=fields.strings("install", ()),
        test_command=fields.string("test_command", DEFAULT_TEST_COMMAND),
        checkov_frameworks=fields.strings(
            "checkov_frameworks", ("github_actions", "dockerfile", "kubernetes", "secrets")
        ),
        bandit_severity=fields.severity("bandit_severity", Severity.MEDIUM),
    )


def load_policy(repo: Any, path: str = DEFAULT_POLICY_PATH, override: Path | None = None) -> Policy:
    """The policy from `override` (an operator's local file) or from `path` on the default branch."""
    if override is not None:
        if not override.is_file():
            raise RlopsError(f"policy file {override} does not exist")
        return parse_policy(override.read_text(encoding="utf-8"), str(override))
    from github import UnknownObjectException

    branch = repo.default_branch
    try:
        content = repo.get_contents(path, ref=branch)
    except UnknownObjectException:
        return Policy(source=f"built-in defaults ({path} is absent on {branch})")
    if isinstance(content, list):
        raise RlopsError(f"policy {path}@{branch} is a folder, not a file")
    text = content.decoded_content.decode("utf-8")
    return parse_policy(text, f"{path}@{branch}")
