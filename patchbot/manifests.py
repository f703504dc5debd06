"""Every manifest a Python project pins its dependencies in, read without running anything.

requirements*.txt, constraints*.txt and exact pins in pyproject.toml (dependencies and optional groups); the
first manifest that pins a package wins, in that order, after the manifest an alert names.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name


@dataclass(frozen=True)
class Pin:
    package: str
    version: str
    manifest: str


def manifest_files(checkout: Path, first: str = "") -> list[Path]:
    candidates = [checkout / first] if first else []
    candidates += sorted(checkout.glob("requirements*.txt")) + sorted(checkout.glob("constraints*.txt"))
    candidates.append(checkout / "pyproject.toml")
    return list(dict.fromkeys(path for path in candidates if path.is_file()))


def _requirement_lines(text: str) -> Iterator[str]:
    for line in text.splitlines():
        stripped = line.split(" #", 1)[0].strip()
        if stripped and not stripped.startswith(("#", "-")):
            yield stripped


def _lines_of(path: Path) -> list[str]:
    if path.name != "pyproject.toml":
        return list(_requirement_lines(path.read_text(encoding="utf-8")))
    try:
        project = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})
    except tomllib.TOMLDecodeError:
        return []
    lines = list(project.get("dependencies", []))
    for group in project.get("optional-dependencies", {}).values():
        lines.extend(group)
    return [line for line in lines if isinstance(line, str)]


def pins_in(path: Path) -> dict[str, str]:
    """Canonical package name -> exact version, for every `==` pin in one manifest."""
    pins: dict[str, str] = {}
    for line in _lines_of(path):
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        exact = [spec.version for spec in requirement.specifier if spec.operator in ("==", "===")]
        if len(exact) == 1 and "*" not in exact[0]:
            pins[canonicalize_name(requirement.name)] = exact[0]
    return pins


def all_pins(checkout: Path, first: str = "") -> dict[str, Pin]:
    found: dict[str, Pin] = {}
    for path in manifest_files(checkout, first):
        where = str(path.relative_to(checkout))
        for name, version in pins_in(path).items():
            found.setdefault(name, Pin(name, version, where))
    return found
