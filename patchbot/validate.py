"""Validation on an isolated branch: `security/<pr>-<slug>` = base tip + PR head, merged with real git, then the
regression and security suite in a clean clone whose environment holds no tokens.

A scanner that finds something is compared with the same scan of the base: only findings the update adds fail
it (existing debt is not this PR's fault). A tool that is missing, crashes or gets no answer is "not run".
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

from patchbot.environment import Installed, ProjectEnvironment, default_install, local_paths, pip_sources
from patchbot.manifests import all_pins
from patchbot.models import Advisory, Snapshot, ToolResult, ToolStatus, Validation
from patchbot.policy import Policy
from patchbot.proc import Proc, last_line, run_program
from patchbot.sandbox import Isolation, Sandbox, open_up_for_sandbox
from patchbot.versions import version_range_check
from rlops_core.errors import RlopsError

# Only these variables reach the suite; everything else (tokens, cloud keys, CI secrets) stays behind.
_PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")
_SENSITIVE_MARKERS = ("TOKEN", "SECRET", "PASSWORD", "KEY", "CREDENTIAL", "AUTH")
_BOT_IDENTITY = ("-c", "user.name=patchbot", "-c", "user.email=patchbot@users.noreply.localhost")

ValidateFn = Callable[[Snapshot, Policy], Validation]


@dataclass(frozen=True)
class ToolConfig:
    """Where the suite's programs live (an explicit scanner folder first, then PATH), the interpreter that
    creates each validation's venv, how strongly the update's code is isolated, and pip's shared cache."""

    tools_bin: Path | None
    python: Path = Path(sys.executable)
    timeout_s: float = 900.0
    isolation: Isolation = Isolation.ENV
    pip_cache: Path | None = None

    def find(self, name: str) -> Path | None:
        if self.tools_bin is not None:
            candidate = self.tools_bin / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
        found = shutil.which(name)
        return Path(found) if found else None


def clean_env(home: Path) -> dict[str, str]:
    env = {name: value for name in _PASSED_THROUGH if (value := os.environ.get(name))}
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        PYTHONDONTWRITEBYTECODE="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        NO_COLOR="1",
    )
    leaked = [name for name in env if any(marker in name.upper() for marker in _SENSITIVE_MARKERS)]
    if leaked:
        raise RlopsError(f"refusing to run the suite: credential-like variables {leaked} in its environment")
    return env


_TIMINGS = re.compile(r"\s+in\s+\d+(?:\.\d+)?s\b|^=+\s*|\s*=+$")
# Versions of the same program file do not change within a process; asking again costs a start-up each time.
_VERSIONS: dict[tuple[str, float, tuple[str, ...]], str] = {}


def strip_timings(text: str) -> str:
    """Tool output without timings or banner rules, so an unchanged result reads the same on every run."""
    return _TIMINGS.sub("", text).strip()


class Git:
    """git with a private HOME and no hooks, so neither the operator's config nor the repo's hooks take part."""

    def __init__(self, cwd: Path, home: Path, extra_env: dict[str, str] | None = None) -> None:
        self.cwd = cwd
        self.env = clean_env(home)
        self.env["GIT_CONFIG_GLOBAL"] = os.devnull
        self.extra_env = extra_env or {}

    def run(self, *args: str, check: bool = True, authenticated: bool = False) -> Proc:
        env = {**self.env, **self.extra_env} if authenticated else self.env
        proc = run_program(["git", "-c", "core.hooksPath=/dev/null", *args], self.cwd, env, 600.0)
        if check and proc.exit_code != 0:
            raise RlopsError(f"git {' '.join(args[:3])} failed in {self.cwd}: {last_line(proc.stderr)}")
        return proc

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.strip()


def git_auth_env(token: str | None) -> dict[str, str]:
    """Credentials for fetches only, passed as one-shot git config in the environment (never on disk)."""
    if not token:
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}",
    }


class Validator:
    """Builds the isolated branch for a snapshot and runs the policy's suite on it."""

    def __init__(self, workdir: Path, clone_url: str, tools: ToolConfig, fetch_env: dict[str, str]) -> None:
        self.workdir = workdir
        self.clone_url = clone_url
        self.tools = tools
        self.fetch_env = fetch_env

    def __call__(self, snapshot: Snapshot, policy: Policy) -> Validation:
        home = Path(tempfile.mkdtemp(prefix="home-", dir=self.workdir))
        mirror = self.workdir / "mirror"
        git = Git(mirror, home, self.fetch_env)
        if not (mirror / ".git").is_dir():
            mirror.mkdir(parents=True, exist_ok=True)
            git.run("init", "-q")
            git.run("remote", "add", "origin", self.clone_url)
        git.run(
            "fetch",
            "-q",
            "--no-tags",
            "--force",
            "origin",
            f"+refs/heads/{snapshot.base_ref}:refs/remotes/origin/{snapshot.base_ref}",
            f"+refs/pull/{snapshot.number}/head:refs/remotes/pr/{snapshot.number}",
            authenticated=True,
        )
        base_sha = git.out("rev-parse", f"refs/remotes/origin/{snapshot.base_ref}")
        # Test exactly the commit the API described; if it is gone (force-push), test what is there and let
        # `decide` see the mismatch.
        known = git.run("cat-file", "-e", f"{snapshot.head_sha}^{{commit}}", check=False).exit_code == 0
        head_sha = snapshot.head_sha if known else git.out("rev-parse", f"refs/remotes/pr/{snapshot.number}")
        git.run("reset", "-q", "--hard")
        git.run("clean", "-q", "-fdx")
        git.run("checkout", "-q", "-B", snapshot.branch, base_sha)
        merged = git.run(
            *_BOT_IDENTITY, "merge", "--no-ff", "--no-edit", "-m", f"patchbot: validate #{snapshot.number}",
            head_sha, check=False,
        )  # fmt: skip
        if merged.exit_code != 0:
            conflicts = tuple(git.out("diff", "--name-only", "--diff-filter=U").split())
            # The next validation starts with reset --hard, so an abort that fails leaves nothing behind.
            git.run("merge", "--abort", check=False)
            if not conflicts:
                raise RlopsError(f"git merge of #{snapshot.number} failed: {last_line(merged.stderr)}")
            return Validation(snapshot.branch, base_sha, head_sha, None, conflicts, ())
        merge_sha = git.out("rev-parse", "HEAD")
        open_up_for_sandbox(self.workdir)
        run_dir = Path(tempfile.mkdtemp(prefix=f"pr{snapshot.number}-", dir=self.workdir))
        checkout = run_dir / "checkout"
        git.run(
            "clone", "-q", "--no-hardlinks", "--branch", snapshot.branch, "--single-branch", str(mirror), str(checkout)
        )
        suite = _Suite(self, checkout, run_dir, mirror, base_sha, clean_env(home), policy, snapshot.advisories)
        installed = suite.install()
        checks = [suite.run(name) for name in policy.suite]
        tools = (installed.result, *checks, version_range_check(checkout, snapshot.advisories, installed.versions))
        wanted = {canonicalize_name(b.package) for b in snapshot.bumps}
        wanted |= {canonicalize_name(a.package) for a in snapshot.advisories}
        versions = tuple(sorted((name, v) for name, v in installed.versions.items() if name in wanted))
        return Validation(
            snapshot.branch, base_sha, head_sha, merge_sha, (), tools, versions, self.tools.isolation.value
        )

    def version_of(self, program: Path, env: dict[str, str], cwd: Path, *args: str) -> str:
        key = (str(program), program.stat().st_mtime, args)
        if key not in _VERSIONS:
            proc = run_program([program, *args, "--version"], cwd, env, 120.0)
            text = (proc.stdout or proc.stderr).strip().splitlines()
            if proc.exit_code != 0 or not text:
                return "unknown"
            _VERSIONS[key] = text[0][:80]
        return _VERSIONS[key]


@dataclass(frozen=True)
class _InstallStep:
    result: ToolResult
    versions: dict[str, str]


@dataclass(frozen=True)
class _Scan:
    proc: Proc
    findings: frozenset[str] | None
    problem: str


class _Suite:
    def __init__(
        self,
        validator: Validator,
        checkout: Path,
        run_dir: Path,
        mirror: Path,
        base_sha: str,
        env: dict[str, str],
        policy: Policy,
        advisories: tuple[Advisory, ...],
    ) -> None:
        self.v = validator
        self.checkout = checkout
        self.run_dir = run_dir
        self.mirror = mirror
        self.base_sha = base_sha
        self.env = env
        self.policy = policy
        self.advisories = advisories
        self._base: Path | None = None
        self._project: ProjectEnvironment | None = None
        self._installed: Installed | None = None

    def install(self) -> _InstallStep:
        """A fresh venv with the merged checkout's own dependency set: what the tests and scanners judge."""
        tools = self.v.tools
        sources = pip_sources(os.environ)
        cache = tools.pip_cache or self.run_dir / "pip-cache"
        cache.mkdir(parents=True, exist_ok=True)
        home = self.run_dir / "home"
        home.mkdir()
        sandbox = Sandbox(tools.isolation, (self.run_dir,), local_paths(sources), install_writable=(cache,))
        # pip reads no config file of the operator's: only the index settings above reach it.
        pip_env = {**sources, "PIP_CACHE_DIR": str(cache), "PIP_CONFIG_FILE": os.devnull}
        project = ProjectEnvironment(
            self.checkout, self.run_dir / "venv", sandbox, {**self.env, "HOME": str(home)}, pip_env, tools.python,
            tools.timeout_s,
        )  # fmt: skip
        pip_version = f"pip {metadata.version('pip')}"
        created = project.create()
        if created.exit_code != 0:
            why = f"could not create a virtual environment with {tools.python}: {last_line(created.stderr)}"
            return _InstallStep(ToolResult("install", ToolStatus.NOT_RUN, created.exit_code, 0.0, pip_version, why), {})
        sandbox.prepare([self.run_dir, cache])
        installed = project.install(self.policy.install or default_install(self.checkout))
        self._project, self._installed = project, installed
        duration = round(created.duration_s + installed.proc.duration_s, 3)
        if not installed.ok:
            detail = f"pip install failed: {installed.problem}"
            result = ToolResult("install", ToolStatus.FAILED, installed.proc.exit_code, duration, pip_version, detail)
            return _InstallStep(result, installed.versions)
        detail = f"{len(installed.versions)} distributions in a fresh venv ({tools.isolation.value} isolation)"
        return _InstallStep(
            ToolResult("install", ToolStatus.PASSED, 0, duration, pip_version, detail), installed.versions
        )

    def run(self, name: str) -> ToolResult:
        if name == "pytest":
            return self._pytest()
        program = self.v.tools.find(name)
        if program is None:
            where = self.v.tools.tools_bin or "PATH"
            return ToolResult(name, ToolStatus.NOT_RUN, None, 0.0, "not installed", f"{name} not found in {where}")
        version = self.v.version_of(program, self.env, self.checkout)
        scan = {"bandit": self._bandit, "checkov": self._checkov, "pip-audit": self._pip_audit}[name]
        head = scan(program, self.checkout)
        duration = head.proc.duration_s
        if head.findings is None:
            return ToolResult(name, ToolStatus.NOT_RUN, head.proc.exit_code, round(duration, 3), version, head.problem)
        blocked = self._advised_ids() & head.findings if name == "pip-audit" else set()
        new = set(head.findings)
        if new and not blocked:
            base = scan(program, self._base_checkout())
            duration += base.proc.duration_s
            if base.findings is None:
                detail = f"{len(new)} findings and the base scan did not run ({base.problem})"
                return ToolResult(name, ToolStatus.FAILED, head.proc.exit_code, round(duration, 3), version, detail)
            new -= base.findings
        if blocked:
            detail = f"advisory still reported: {', '.join(sorted(blocked))}"
        elif new:
            detail = f"{len(new)} new findings: {', '.join(sorted(new)[:5])}"
        else:
            detail = "no new findings" if head.findings else "no findings"
        status = ToolStatus.FAILED if (blocked or new) else ToolStatus.PASSED
        return ToolResult(name, status, head.proc.exit_code, round(duration, 3), version, detail)

    def _advised_ids(self) -> set[str]:
        ids = {a.ghsa_id for a in self.advisories} | {a.cve_id for a in self.advisories if a.cve_id}
        return {f"id:{i}" for i in ids}

    def _base_checkout(self) -> Path:
        if self._base is None:
            self._base = self.run_dir / "base"
            git = Git(self.run_dir, Path(self.env["HOME"]))
            git.run("clone", "-q", "--no-hardlinks", "--no-checkout", str(self.mirror), str(self._base))
            Git(self._base, Path(self.env["HOME"])).run("checkout", "-q", "--detach", self.base_sha)
        return self._base

    def _pytest(self) -> ToolResult:
        project, installed = self._project, self._installed
        if project is None or installed is None or not installed.ok:
            return ToolResult("pytest", ToolStatus.NOT_RUN, None, 0.0, "-", "the project's environment did not install")
        version = f"pytest {installed.versions['pytest']}" if "pytest" in installed.versions else "unknown"
        proc = project.run([*shlex.split(self.policy.test_command), *self.policy.pytest_args])
        summary = strip_timings(last_line(proc.stdout) or last_line(proc.stderr))
        duration = round(proc.duration_s, 3)
        if proc.exit_code == 0:
            return ToolResult("pytest", ToolStatus.PASSED, 0, duration, version, summary)
        if proc.exit_code == 5:
            return ToolResult("pytest", ToolStatus.NOT_RUN, 5, duration, version, "no tests were collected")
        if proc.exit_code is None and not proc.timed_out:
            return ToolResult("pytest", ToolStatus.NOT_RUN, None, duration, version, proc.stderr)
        return ToolResult("pytest", ToolStatus.FAILED, proc.exit_code, duration, version, summary or "failed")

    def _bandit(self, program: Path, where: Path) -> _Scan:
        # bandit's scale stops at high.
        level = {"critical": "high"}.get(self.policy.bandit_severity.value, self.policy.bandit_severity.value)
        argv: list[str | Path] = [program, "-r", ".", "-f", "json", "-q", "--severity-level", level, "-x", "./.git"]
        proc = run_program(argv, where, self.env, self.v.tools.timeout_s)
        try:
            report = json.loads(proc.stdout)
        except json.JSONDecodeError:
            return _Scan(proc, None, f"no report (exit {proc.exit_code}): {last_line(proc.stderr)}")
        if proc.exit_code not in (0, 1) or report.get("errors"):
            return _Scan(proc, None, f"bandit could not scan everything (exit {proc.exit_code})")
        findings = frozenset(
            f"{r['test_id']}:{Path(r['filename']).as_posix().removeprefix('./')}" for r in report["results"]
        )
        return _Scan(proc, findings, "")

    def _checkov(self, program: Path, where: Path) -> _Scan:
        argv: list[str | Path] = [program, "-d", ".", "--quiet", "--compact", "--skip-download", "-o", "json"]
        argv.append("--framework")
        argv += list(self.policy.checkov_frameworks)
        proc = run_program(argv, where, self.env, self.v.tools.timeout_s)
        try:
            report = json.loads(proc.stdout)
        except json.JSONDecodeError:
            return _Scan(proc, None, f"no report (exit {proc.exit_code}): {last_line(proc.stderr)}")
        if proc.exit_code not in (0, 1):
            return _Scan(proc, None, f"checkov exited {proc.exit_code}")
        sections = report if isinstance(report, list) else [report]
        findings = frozenset(
            f"{check['check_id']}:{check['file_path']}:{check['resource']}"
            for section in sections
            for check in section.get("results", {}).get("failed_checks", [])
        )
        return _Scan(proc, findings, "")

    def _pip_audit(self, program: Path, where: Path) -> _Scan:
        pins = {name: pin.version for name, pin in all_pins(where).items()}
        if where == self.checkout and self._installed is not None:
            # The environment the tests ran in is the truth; manifests add what the policy did not install.
            pins.update(self._installed.versions)
        if not pins:
            return _Scan(Proc(None, "", "", 0.0), None, "no pinned or installed dependency to audit")
        requirements = Path(tempfile.mkstemp(prefix="audit-", suffix=".txt", dir=self.run_dir)[1])
        requirements.write_text("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
        output = Path(tempfile.mkstemp(prefix="pip-audit-", suffix=".json", dir=self.run_dir)[1])
        argv: list[str | Path] = [program, "--strict", "--progress-spinner", "off", "--no-deps", "--disable-pip"]
        argv += ["-f", "json", "-o", output]
        argv += ["-r", requirements]
        proc = run_program(argv, where, self.env, self.v.tools.timeout_s)
        try:
            report = json.loads(output.read_text(encoding="utf-8") or "null")
        except json.JSONDecodeError:
            report = None
        # --strict fails on any package it could not look up; only a full report counts as an answer.
        if (
            proc.exit_code not in (0, 1)
            or not isinstance(report, dict)
            or any(dep.get("skip_reason") for dep in report.get("dependencies", []))
        ):
            why = last_line(proc.stderr) or f"exit {proc.exit_code}"
            return _Scan(proc, None, f"no answer from the vulnerability service: {why}")
        findings = set()
        for dep in report.get("dependencies", []):
            for vuln in dep.get("vulns", []):
                findings.add(f"{dep['name']}:{vuln['id']}")
                findings.update(f"id:{alias}" for alias in [vuln["id"], *vuln.get("aliases", [])])
        return _Scan(proc, frozenset(findings), "")
