"""Plain-text renderings of a run for the terminal (the Typer app in `rlops.cli.patchbot_cmd` prints them)."""

from __future__ import annotations

from patchbot.report import render_comment
from patchbot.runner import PrResult, RunResult


def summary(result: RunResult) -> str:
    mode = "applied" if result.apply else "dry run (nothing written; pass --apply to act)"
    lines = [f"patchbot {result.repo}: {mode}; policy {result.policy.source} version {result.policy.version}"]
    if not result.results:
        lines.append("no open security pull requests")
    for pr in result.results:
        snap, decision = pr.snapshot, pr.decision
        done = ", ".join(f"{what} {how}" for what, how in pr.actions)
        lines.append(f"#{snap.number} {decision.code.value}: {decision.reason} [{pr.report.outcome.value}; {done}]")
    return "\n".join(lines)


def explanation(pr: PrResult) -> str:
    snap, decision = pr.snapshot, pr.decision
    lines = [f"#{snap.number} {snap.title}", f"decision: {decision.code.value}: {decision.reason}"]
    if decision.all_reasons:
        lines.append("every rule that holds it:")
        lines += [f"  {code.value}: {reason}" for code, reason in decision.all_reasons]
    lines += ["", "the bot comment would read:", "", render_comment(pr.report).body]
    return "\n".join(lines)
