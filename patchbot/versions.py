"""Version arithmetic the bot does itself, independent of any service: what kind of update a PR is, what it
bumps, and whether the version a checkout resolves to lies outside an advisory's vulnerable range.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from patchbot.manifests import all_pins
from patchbot.models import Advisory, Bump, ToolResult, ToolStatus, UpdateType
from patchbot.policy import VERSION_CHECK

BOT_VERSION = "patchbot 1"
_SEVERITY_ORDER = [UpdateType.PATCH, UpdateType.MINOR, UpdateType.UNKNOWN, UpdateType.PRE_1_0, UpdateType.MAJOR]
_METADATA_TYPES = {
    "version-update:semver-patch": UpdateType.PATCH,
    "version-update:semver-minor": UpdateType.MINOR,
    "version-update:semver-major": UpdateType.MAJOR,
}
_TITLE = re.compile(r"^(?:[\w-]+(?:\([^)]*\))?!?:\s*)?bump (?P<pkg>\S+) from (?P<old>\S+) to (?P<new>\S+)", re.I)
_DEPENDABOT_BODY = re.compile(r"^Updates `(?P<pkg>[^`]+)` from (?P<old>\S+) to (?P<new>\S+)", re.M)
_RENOVATE_ROW = re.compile(
    r"^\|\s*\[?(?P<pkg>[A-Za-z0-9][A-Za-z0-9._\-]*)\]?(?:\([^)]*\))?\s*\|[^\n]*?"
    r"`v?(?P<old>[^`\s]+)`\s*(?:->|→)\s*`v?(?P<new>[^`\s]+)`",
    re.M,
)
_RANGE_PART = re.compile(r"^(?P<op><=|>=|<|>|=|==|!=)\s*(?P<version>\S+)$")


def classify(old: str | None, new: str | None) -> UpdateType:
    """Semantic-version class of `old -> new`; anything that is not a plain forward step is unknown."""
    if old is None or new is None:
        return UpdateType.UNKNOWN
    try:
        before, after = Version(old.rstrip(".")), Version(new.rstrip("."))
    except InvalidVersion:
        return UpdateType.UNKNOWN
    if after <= before or after.is_prerelease or after.is_devrelease:
        return UpdateType.UNKNOWN
    if before.major == 0 or after.major == 0:
        return UpdateType.PRE_1_0
    if after.major != before.major:
        return UpdateType.MAJOR
    if after.minor != before.minor:
        return UpdateType.MINOR
    return UpdateType.PATCH


def _worse(a: UpdateType, b: UpdateType) -> UpdateType:
    return a if _SEVERITY_ORDER.index(a) >= _SEVERITY_ORDER.index(b) else b


def _metadata_types(messages: Iterable[str]) -> dict[str, UpdateType]:
    """Update types Dependabot declares in its commit messages' YAML block (as dependabot/fetch-metadata reads)."""
    found: dict[str, UpdateType] = {}  # canonical name -> declared type
    for message in messages:
        if "updated-dependencies:" not in message:
            continue
        block = message[message.index("updated-dependencies:") :].split("\n...", 1)[0]
        try:
            data = yaml.safe_load(block)
        except yaml.YAMLError:
            continue
        entries = data.get("updated-dependencies") if isinstance(data, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("dependency-name"), str):
                declared = _METADATA_TYPES.get(str(entry.get("update-type")), UpdateType.UNKNOWN)
                found[str(canonicalize_name(entry["dependency-name"]))] = declared
    return found


def parse_bumps(title: str, body: str, commit_messages: Iterable[str]) -> tuple[Bump, ...]:
    """The dependencies a Dependabot or Renovate PR changes, from its title, body and commit metadata."""
    seen: dict[str, tuple[str, str, str]] = {}  # canonical name -> (name as written, old, new)
    matches: list[re.Match[str]] = []
    if title_match := _TITLE.match(title.strip()):
        matches.append(title_match)
    matches.extend(_DEPENDABOT_BODY.finditer(body))
    matches.extend(_RENOVATE_ROW.finditer(body))
    for match in matches:
        seen.setdefault(
            str(canonicalize_name(match["pkg"])), (match["pkg"], match["old"].rstrip("."), match["new"].rstrip("."))
        )
    declared = _metadata_types(commit_messages)
    bumps = []
    for key, (package, old, new) in seen.items():
        kind = classify(old, new)
        if key in declared:
            kind = _worse(kind, declared[key])
        bumps.append(Bump(package, old, new, kind))
    return tuple(bumps)


def parse_range(text: str) -> SpecifierSet:
    """GitHub's advisory range syntax (`>= 2.0, < 2.31.1`, `= 1.0`) as a PEP 440 specifier set."""
    parts = []
    for raw in text.split(","):
        match = _RANGE_PART.match(raw.strip())
        if match is None:
            raise ValueError(f"cannot read vulnerable range part {raw.strip()!r}")
        op = "==" if match["op"] == "=" else match["op"]
        parts.append(f"{op}{match['version']}")
    try:
        return SpecifierSet(",".join(parts), prereleases=True)
    except InvalidSpecifier as exc:
        raise ValueError(f"cannot read vulnerable range {text!r}: {exc}") from exc


def resolved_version(checkout: Path, advisory: Advisory) -> tuple[str | None, str]:
    """The exact version the checkout pins for the advised package, and the manifest it was read from."""
    pin = all_pins(checkout, advisory.manifest_path).get(canonicalize_name(advisory.package))
    return (pin.version, pin.manifest) if pin else (None, "")


def version_range_check(
    checkout: Path, advisories: Iterable[Advisory], installed: Mapping[str, str] | None = None
) -> ToolResult:
    """Pass only if every advised package is outside the alert's vulnerable range.

    The version installed in the validation environment is what the tests ran against, so it decides; a
    manifest pin is the fallback when the package was not installed (an extra the policy does not install).
    """
    started = time.monotonic()
    problems: list[str] = []
    notes: list[str] = []
    advisories = list(advisories)
    installed = {canonicalize_name(name): version for name, version in (installed or {}).items()}
    if not advisories:
        problems.append("no advisory to check against")
    for advisory in advisories:
        pinned, manifest = resolved_version(checkout, advisory)
        version = installed.get(canonicalize_name(advisory.package))
        source = "installed"
        if version is None:
            version, source = pinned, manifest
        elif pinned is not None and pinned != version:
            source = f"installed; {manifest} pins {pinned}"
        if version is None:
            problems.append(f"{advisory.package} is neither installed nor pinned exactly, so its version is unknown")
            continue
        try:
            vulnerable = parse_range(advisory.vulnerable_range)
            inside = Version(version) in vulnerable
        except (ValueError, InvalidVersion) as exc:
            problems.append(f"{advisory.package} {version}: {exc}")
            continue
        where = f"{advisory.package} {version} ({source})"
        if inside:
            problems.append(f"{where} is still inside {advisory.ghsa_id}'s range {advisory.vulnerable_range}")
        else:
            notes.append(f"{where} is outside {advisory.vulnerable_range}")
    status = ToolStatus.FAILED if problems else ToolStatus.PASSED
    detail = "; ".join(problems or notes)
    return ToolResult(VERSION_CHECK, status, None, round(time.monotonic() - started, 3), BOT_VERSION, detail)
