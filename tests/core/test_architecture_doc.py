"""docs/architecture.md lists every module of the packages with its one-line responsibility: adding, renaming
or removing a module without updating the page fails here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("rlops", "rlops_core", "ml", "workflows", "patchbot", "infra", "policies")


def test_the_module_table_matches_the_code() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    listed = set(re.findall(r"^\| `([\w/.]+\.py)` \| \S", page, re.M))
    actual = {
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if path.name != "__main__.py"
    }
    assert sorted(actual - listed) == [], "modules missing from docs/architecture.md"
    assert sorted(listed - actual) == [], "docs/architecture.md lists modules that no longer exist"
