"""Imports point down. `rlops` (the CLI and the deploy commands) is the top: no library package imports it; the
tests are above everything, and nothing imports them.
`rlops_core` (errors, the memory bank) is the bottom: it imports nothing else of the project."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("rlops", "rlops_core", "ml", "workflows", "patchbot", "infra", "policies")


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a source file imports, deferred imports inside functions included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", ["rlops_core", "ml", "workflows", "patchbot", "infra", "policies"])
def test_no_library_package_imports_the_cli_package(package: str) -> None:
    offenders = [path.relative_to(ROOT).as_posix() for path in sources(package) if "rlops" in imported_packages(path)]
    assert offenders == [], f"these modules import the top-level rlops package: {offenders}"


def test_the_core_imports_nothing_else_of_the_project() -> None:
    offenders = {
        path.relative_to(ROOT).as_posix(): sorted(imported_packages(path) & (set(OURS) - {"rlops_core"}))
        for path in sources("rlops_core")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_walk_sees_deferred_imports(tmp_path: Path) -> None:
    """A function-level `from rlops import memory` (how the pipeline's record stage once reached the bank) is caught."""
    module = tmp_path / "deferred.py"
    module.write_text("def record():\n    from rlops import memory\n    return memory\n")
    assert imported_packages(module) == {"rlops"}


@pytest.mark.parametrize("package", ["benchmarks", *OURS])
def test_nothing_but_tests_imports_the_tests(package: str) -> None:
    """Benchmarks and the product run where the test suite is not installed (and a fixture is not a contract)."""
    offenders = [path.relative_to(ROOT).as_posix() for path in sources(package) if "tests" in imported_packages(path)]
    assert offenders == [], f"these modules import from tests/: {offenders}"
