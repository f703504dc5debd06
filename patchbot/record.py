"""Recording every merge and hold in the memory bank (`patches.md`) through the memory library.

Each entry carries a key line (repo, PR, head SHA, decision); an entry with the same key is not added again, so
reruns leave the bank as it is.
"""

from __future__ import annotations

from pathlib import Path

from patchbot.models import ToolStatus
from patchbot.report import Report
from patchbot.validate import strip_timings
from rlops_core import memory


def record_key(report: Report) -> str:
    snap = report.snapshot
    return f"patchbot-key: {snap.repo}#{snap.number}@{snap.head_sha}:{report.decision.code.value}:{report.outcome.name}"


def already_recorded(bank: Path, key: str) -> bool:
    if not (bank / memory.KIND_FILES[memory.EntryKind.PATCH]).exists():
        return False
    return any(key in entry.body for entry in memory.read_entries(bank, memory.EntryKind.PATCH))


def entry_text(report: Report) -> tuple[str, str]:
    snap, decision, validation = report.snapshot, report.decision, report.snapshot.validation
    changes = ", ".join(f"{b.package} {b.from_version} -> {b.to_version}" for b in snap.bumps) or "unknown"
    verb = "merged" if report.merged_sha else "held"
    title = f"patchbot {verb} {snap.repo}#{snap.number}: {changes}"
    advisories = "; ".join(f"{a.ids} {a.severity.value}" for a in snap.advisories) or "none matched"
    if validation is None:
        checks = "not validated"
    elif validation.conflicted:
        checks = f"merge conflict in {', '.join(validation.conflict_files)}"
    else:
        checks = "; ".join(
            f"{t.name} {t.status.value} (exit {t.exit_code}, {t.version})"
            + (f": {strip_timings(t.detail)}" if t.status is not ToolStatus.PASSED else "")
            for t in validation.tools
        )
    lines = [
        f"- PR: {snap.url or f'#{snap.number}'} ({snap.title})",
        f"- Advisories: {advisories}",
        f"- Package: {changes}",
        f"- Decision: {decision.code.value}: {decision.reason}",
        f"- Outcome: {report.outcome.value}",
        f"- Checks: {checks}",
        f"- Tested SHA: {snap.head_sha}"
        + (f" on {validation.branch} (base {validation.base_sha})" if validation else ""),
        f"- Merged SHA: {report.merged_sha or 'not merged'}",
        f"- Policy: {report.policy.source}, version {report.policy.version}",
        f"- {record_key(report)}",
    ]
    return title, "\n".join(lines)


def record(bank: Path, report: Report, apply: bool) -> str:
    key = record_key(report)
    if already_recorded(bank, key):
        return "unchanged"
    if not apply:
        return "would be recorded"
    title, body = entry_text(report)
    memory.add_entry(bank, memory.EntryKind.PATCH, title, body)
    return "recorded"
