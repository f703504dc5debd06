"""The bot's integration test bed: a real bare "remote" with a tiny pytest project, a clone that pushes
Dependabot-style branches, and the fake GitHub API in front of it."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from patchbot_fake_github import FakeGitHub, FakePull, git

from patchbot.github_api import Credentials
from patchbot.runner import RunOptions, RunResult, ValidatorFactory, run
from patchbot.validate import ToolConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"
GOOD = Credentials(token="good-token")

# Scenarios about flow (holds, conflicts, retries) run the regression suite only, to stay fast; the scanners
# are exercised by the tests that are about them.
FAST_POLICY = """\
version: 3
allowed_update_types: [patch, minor]
min_severity: medium
suite: [pytest]
"""

SEED_FILES = {
    "requirements.txt": "requests==2.31.0\nurllib3==1.26.17\nidna==3.4\n",
    "pytest.ini": "[pytest]\ntestpaths = tests\n",
    "app.py": "def fee(notional: float) -> float:\n    return round(notional * 0.001, 6)\n",
    "tests/test_app.py": textwrap.dedent(
        """\
        import os

        from app import fee


        def test_fee():
            assert fee(1000.0) == 1.0


        def test_no_credentials_reach_the_suite():
            leaked = [k for k in os.environ if "TOKEN" in k or "SECRET" in k or k.startswith("GITHUB")]
            assert leaked == []
        """
    ),
    "tests/test_compat.py": textwrap.dedent(
        """\
        import urllib3


        def test_the_tls_adapter_of_the_installed_urllib3_works():
            assert urllib3.tls_adapter() == "ok"
        """
    ),
    "tests/conftest.py": "import sys\nfrom pathlib import Path\n\nsys.path.insert(0, str(Path(__file__).parents[1]))\n",
}


def dependabot_message(package: str, old: str, new: str, update_type: str) -> str:
    return textwrap.dedent(
        f"""\
        Bump {package} from {old} to {new}

        Bumps [{package}](https://pypi.invalid/{package}) from {old} to {new}.

        ---
        updated-dependencies:
        - dependency-name: {package}
          dependency-version: {new}
          dependency-type: direct:production
          update-type: version-update:semver-{update_type}
        ...

        Signed-off-by: dependabot[bot] <support@github.com>
        """
    )


@dataclass
class Project:
    root: Path
    bare: Path
    work: Path
    fake: FakeGitHub
    bank: Path
    state_dir: Path

    def commit(self, branch: str, files: dict[str, str], message: str, start: str = "main") -> str:
        git(self.work, "checkout", "-q", "-B", branch, f"origin/{start}" if branch != start else start)
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "--force", "origin", f"HEAD:refs/heads/{branch}")
        git(self.work, "fetch", "-q", "origin")
        return git(self.work, "rev-parse", "HEAD")

    def pull(
        self,
        number: int,
        files: dict[str, str],
        *,
        title: str,
        message: str | None = None,
        author: str = "dependabot[bot]",
        **fields: Any,
    ) -> FakePull:
        branch = f"dependabot/pip/pr-{number}"
        self.commit(branch, files, message or title)
        git(self.work, "push", "-q", "--force", "origin", f"HEAD:refs/pull/{number}/head")
        pull = self.fake.add_pull(FakePull(number, title, "", author, branch, **fields))
        self.green_ci(self.fake.head_sha(pull))
        return pull

    def green_ci(self, sha: str) -> None:
        """CI has reported success on `sha` (the default policy requires every check to be green, and one)."""
        self.fake.statuses.setdefault(sha, []).append(
            {"context": "ci/tests", "state": "success", "description": "make test", "id": 1,
             "url": f"{self.fake.repo_url}/statuses/{sha}"}
        )  # fmt: skip

    def push_to_pull(self, pull: FakePull, files: dict[str, str], message: str) -> str:
        git(self.work, "checkout", "-q", pull.head_ref)
        git(self.work, "reset", "-q", "--hard", f"origin/{pull.head_ref}")
        for name, text in files.items():
            (self.work / name).write_text(text)
        git(self.work, "commit", "-q", "-am", message)
        git(self.work, "push", "-q", "origin", f"HEAD:refs/heads/{pull.head_ref}", f"HEAD:refs/pull/{pull.number}/head")
        git(self.work, "fetch", "-q", "origin")
        return git(self.work, "rev-parse", "HEAD")

    def bump_requests(self, number: int = 1, new: str = "2.31.1", kind: str = "patch", **fields: Any) -> FakePull:
        requirements = SEED_FILES["requirements.txt"].replace("requests==2.31.0", f"requests=={new}")
        return self.pull(
            number,
            {"requirements.txt": requirements},
            title=f"Bump requests from 2.31.0 to {new}",
            message=dependabot_message("requests", "2.31.0", new, kind),
            **fields,
        )

    def options(self, **changes: Any) -> RunOptions:
        base = RunOptions(
            repo=self.fake.full_name,
            apply=True,
            api_url=self.fake.url,
            bank=self.bank,
            state_dir=self.state_dir,
            workdir=self.root,
            tools=ToolConfig(TOOLS_BIN, Path(sys.executable), timeout_s=120),
            seconds_between_writes=0.0,
            max_rate_limit_wait_s=5.0,
            retries=3,
            backoff=0.0,
        )
        return replace(base, **changes)

    def run(self, wrap: ValidatorFactory | None = None, creds: Credentials = GOOD, **changes: Any) -> RunResult:
        return run(self.options(**changes), creds, wrap)

    def remote_file(self, name: str, ref: str = "main") -> str:
        return git(self.bare, "show", f"{ref}:{name}")

    def patches(self) -> str:
        path = self.bank / "patches.md"
        return path.read_text() if path.exists() else ""


def make_project(tmp_path: Path, policy: str = FAST_POLICY) -> Iterator[Project]:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "--initial-branch=main", str(bare))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    git(work, "checkout", "-q", "-b", "main")
    for name, text in {**SEED_FILES, ".github/patchbot.yml": policy}.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "seed")
    git(work, "push", "-q", "origin", "main")
    git(work, "fetch", "-q", "origin")
    bank = tmp_path / "bank"
    bank.mkdir()
    fake = FakeGitHub(bare).start()
    try:
        yield Project(tmp_path, bare, work, fake, bank, tmp_path / "state")
    finally:
        fake.stop()
