"""The `project` fixture: a fresh remote, clone and fake GitHub API per test, with the fast policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from patchbot_project import Project, make_project


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    yield from make_project(tmp_path)
