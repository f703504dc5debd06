"""One bot run over one repository: read everything and validate first, then act.

Reading (policy, alerts, pull requests, CI state, local validation) finishes for every candidate before the
first write, so an error while reading (bad policy, 401, 404, rate limit) leaves GitHub and the memory bank as
they were. Writes per PR go status -> comment -> approve/merge -> comment outcome -> label -> memory record,
each skipped when it is already in place.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from patchbot.decide import decide
from patchbot.discover import is_security_update, match_advisories, open_alerts
from patchbot.github_api import Connection, Credentials, connect, github_errors
from patchbot.lock import repo_lock
from patchbot.merge import approve_and_merge
from patchbot.models import Decision, DecisionCode, MergeOutcome, Snapshot
from patchbot.policy import DEFAULT_POLICY_PATH, Policy, load_policy
from patchbot.record import record
from patchbot.report import (
    TRANSIENT,
    Report,
    ensure_label,
    render_comment,
    set_status,
    status_for,
    upsert_comment,
)
from patchbot.sandbox import Isolation, resolve
from patchbot.snapshot import take_snapshot
from patchbot.validate import ToolConfig, ValidateFn, Validator, git_auth_env
from patchbot.versions import parse_bumps
from rlops_core import memory
from rlops_core.errors import RlopsError

_REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")

# Lets tests (and embedders) wrap the real validator, e.g. to push a commit while it runs.
ValidatorFactory = Callable[[Validator], ValidateFn]


@dataclass(frozen=True)
class RunOptions:
    repo: str
    apply: bool = False
    policy_file: Path | None = None
    policy_path: str = DEFAULT_POLICY_PATH
    api_url: str = "https://api.github.com"
    bank: Path | None = None
    state_dir: Path = Path(".rlops/patchbot")
    workdir: Path | None = None
    tools: ToolConfig = field(default_factory=lambda: ToolConfig(Path(".tools/bin")))
    bot_login: str | None = None
    only_pr: int | None = None
    seconds_between_writes: float = 1.0
    max_rate_limit_wait_s: float = 120.0
    retries: int = 4
    backoff: float = 1.0
    isolation: Isolation = Isolation.AUTO
    # pip's download cache, shared between runs (default: <state_dir>/pip-cache); None with `read_only`.
    pip_cache: Path | None = None
    # `explain`: no lock file, no state folder, a throwaway pip cache; nothing outlives the run.
    read_only: bool = False


@dataclass(frozen=True)
class PrResult:
    report: Report
    actions: tuple[tuple[str, str], ...]

    @property
    def snapshot(self) -> Snapshot:
        return self.report.snapshot

    @property
    def decision(self) -> Decision:
        return self.report.decision


@dataclass(frozen=True)
class RunResult:
    repo: str
    apply: bool
    policy: Policy
    results: tuple[PrResult, ...]


@dataclass(frozen=True)
class _Plan:
    pr: Any
    snapshot: Snapshot
    decision: Decision


def run(options: RunOptions, creds: Credentials, wrap_validator: ValidatorFactory | None = None) -> RunResult:
    if not _REPO_NAME.match(options.repo):
        raise RlopsError(f"--repo must look like OWNER/NAME, got {options.repo!r}")
    bank = (options.bank or memory.find_bank()) if options.apply else options.bank
    if bank is not None and not bank.is_dir():
        raise RlopsError(f"memory bank folder {bank} does not exist")
    isolation = resolve(options.isolation)
    pip_cache = None if options.read_only else (options.pip_cache or options.state_dir / "pip-cache")
    options = replace(options, tools=replace(options.tools, isolation=isolation, pip_cache=pip_cache))
    with nullcontext() if options.read_only else repo_lock(options.state_dir, options.repo):
        conn = connect(
            creds,
            options.repo,
            api_url=options.api_url,
            bot_login=options.bot_login,
            max_rate_limit_wait_s=options.max_rate_limit_wait_s,
            retries=options.retries,
            backoff=options.backoff,
            seconds_between_writes=options.seconds_between_writes,
        )
        workdir = Path(tempfile.mkdtemp(prefix="patchbot-", dir=options.workdir))
        try:
            return _run(options, conn, workdir, bank, wrap_validator)
        finally:
            conn.github.close()
            shutil.rmtree(workdir, ignore_errors=True)


def _run(
    options: RunOptions, conn: Connection, workdir: Path, bank: Path | None, wrap: ValidatorFactory | None
) -> RunResult:
    with github_errors(f"opening {options.repo}", repo_name=options.repo):
        repo = conn.github.get_repo(options.repo)
    with github_errors(f"reading the policy of {options.repo}"):
        policy = load_policy(repo, options.policy_path, options.policy_file)
    with github_errors(f"reading open Dependabot alerts of {options.repo} (needs 'Dependabot alerts: read')"):
        alerts = open_alerts(repo)
    real = Validator(workdir, repo.clone_url, options.tools, git_auth_env(conn.token))
    validator: ValidateFn = wrap(real) if wrap is not None else real
    if bank is not None and (bank / memory.KIND_FILES[memory.EntryKind.PATCH]).exists():
        # A damaged record file must stop the run now, not after GitHub has been written to.
        memory.read_entries(bank, memory.EntryKind.PATCH)

    plans: list[_Plan] = []
    merging_into: set[str] = set()
    with github_errors(f"reading pull requests of {options.repo}"):
        pulls = sorted(repo.get_pulls(state="open", sort="created", direction="asc"), key=lambda p: p.number)
        for listed in pulls:
            if options.only_pr is not None and listed.number != options.only_pr:
                continue
            labels = tuple(label.name for label in listed.labels)
            rough = match_advisories(parse_bumps(listed.title or "", listed.body or "", ()), alerts)
            if not is_security_update(listed.title or "", labels, rough, policy):
                continue
            pr = repo.get_pull(listed.number)
            snap = take_snapshot(repo, pr, alerts)
            decision = decide(snap, policy)
            if decision.code is DecisionCode.NOT_VALIDATED:
                snap = replace(snap, validation=validator(snap, policy))
                # Head or base may have moved while the suite ran; what merges must be what was tested.
                snap = _with_current_refs(repo, snap)
                snap = replace(snap, base_already_merged=snap.base_ref in merging_into)
                decision = decide(snap, policy)
            if decision.merge:
                merging_into.add(snap.base_ref)
            plans.append(_Plan(pr, snap, decision))
        if options.only_pr is not None and not plans:
            raise RlopsError(f"pull request #{options.only_pr} is not an open security update in {options.repo}")

    results = []
    for plan in plans:
        with github_errors(f"reporting on {options.repo}#{plan.snapshot.number}"):
            results.append(_act(options, conn, repo, plan, policy, bank))
    return RunResult(options.repo, options.apply, policy, tuple(results))


def _with_current_refs(repo: Any, snap: Snapshot) -> Snapshot:
    head = str(repo.get_pull(snap.number).head.sha)
    base = str(repo.get_branch(snap.base_ref).commit.sha)
    return replace(snap, current_head_sha=head, current_base_sha=base)


def _act(options: RunOptions, conn: Connection, repo: Any, plan: _Plan, policy: Policy, bank: Path | None) -> PrResult:
    apply, snap, decision = options.apply, plan.snapshot, plan.decision
    actions: list[tuple[str, str]] = []
    outcome = MergeOutcome.DRY_RUN if not apply else MergeOutcome.HELD
    merged_sha: str | None = None
    validation = snap.validation
    if validation is not None:
        state, description = status_for(validation)
        actions.append(("status", set_status(repo, snap.head_sha, state, description, apply)))
    if decision.merge and apply:
        # The last read before the merge: a base or head that moved since validation is validated again.
        snap = _with_current_refs(repo, snap)
        decision = decide(snap, policy)
    if decision.merge and apply:
        # Say what is about to happen before doing it, so an interrupted merge is never unexplained.
        pending = Report(snap, decision, MergeOutcome.MERGING, None, policy)
        actions.append(("comment", upsert_comment(plan.pr, conn.bot_login, render_comment(pending), apply)))
        merged = approve_and_merge(repo, plan.pr, snap, conn.bot_login, policy.merge_method)
        outcome, merged_sha = merged.outcome, merged.merged_sha
        actions.append(("merge", merged.detail))
        if outcome is not MergeOutcome.MERGED:
            code = DecisionCode.HEAD_MOVED if outcome is MergeOutcome.HEAD_MOVED else decision.code
            decision = Decision(code, merged.detail, ((code, merged.detail),))
    report = Report(snap, decision, outcome, merged_sha, policy)
    actions.append(("comment", upsert_comment(plan.pr, conn.bot_login, render_comment(report), apply)))
    needs_human = outcome is MergeOutcome.REFUSED or (not decision.merge and decision.code not in TRANSIENT)
    if needs_human:
        actions.append(("label", ensure_label(plan.pr, policy.needs_human_label, apply)))
    if bank is not None:
        actions.append(("memory", record(bank, report, apply)))
    return PrResult(report, tuple(actions))
