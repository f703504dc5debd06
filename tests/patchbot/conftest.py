"""The `project` fixture: a fresh remote, clone and fake GitHub API per test, with the fast policy; every
validation installs from a local wheelhouse (no index), as an operator's PIP_* settings would point it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from patchbot_project import Project, make_project
from patchbot_wheels import build_wheelhouse


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))


@pytest.fixture(autouse=True)
def offline_pip(wheelhouse: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CERT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheelhouse))


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    yield from make_project(tmp_path)
