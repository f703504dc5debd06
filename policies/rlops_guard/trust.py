"""OIDC trust (IRSA and GitHub Actions): a web-identity role must pin its audience and its exact subjects.

A wildcard or StringLike `sub` would let any service account, branch or fork assume the role.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from policies.rlops_guard.props import DocumentError, as_list, known, parse_document, statements

ROLE = "aws:iam/role:Role"
WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity"
STS_AUDIENCE = "sts.amazonaws.com"
GITHUB_ISSUER = "token.actions.githubusercontent.com"
_WILDCARDS = ("*", "?")
# GitHub subjects that name a protected ref or a deployment environment; pull_request and others do not.
_GITHUB_PINNED = (":ref:refs/heads/", ":ref:refs/tags/", ":environment:")


def _allows_web_identity(statement: dict[str, Any]) -> bool:
    actions = as_list(statement.get("Action"))
    return statement.get("Effect", "Allow") == "Allow" and any(a in (WEB_IDENTITY, "sts:*", "*") for a in actions)


def _problems(statement: dict[str, Any]) -> list[str]:
    condition = statement.get("Condition") or {}
    equals = condition.get("StringEquals") or {}
    problems = []
    for operator, clauses in condition.items():
        if operator != "StringEquals" and isinstance(clauses, dict) and any(k.endswith(":sub") for k in clauses):
            problems.append(f"`sub` is matched with {operator}; use StringEquals with exact subjects")
    sub_keys = [k for k in equals if k.endswith(":sub")]
    aud_keys = [k for k in equals if k.endswith(":aud")]
    if not sub_keys:
        problems.append("no StringEquals condition on the `sub` claim")
    if not aud_keys or any(as_list(equals[k]) != [STS_AUDIENCE] for k in aud_keys):
        problems.append(f"the `aud` claim must be StringEquals {STS_AUDIENCE!r}")
    for key in sub_keys:
        subjects = as_list(equals[key])
        if not subjects:
            problems.append(f"{key} lists no subjects")
        for subject in subjects:
            if not isinstance(subject, str) or any(w in subject for w in _WILDCARDS):
                problems.append(f"subject {subject!r} is not exact")
            elif key.startswith(GITHUB_ISSUER) and not any(p in subject for p in _GITHUB_PINNED):
                problems.append(f"GitHub subject {subject!r} is not a protected ref or environment")
            elif not key.startswith(GITHUB_ISSUER) and not subject.startswith("system:serviceaccount:"):
                problems.append(f"IRSA subject {subject!r} must be system:serviceaccount:<namespace>:<name>")
    return problems


def _trust_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != ROLE:
        return
    try:
        doc = parse_document(known(args.props, "assumeRolePolicy"))
    except DocumentError as exc:
        report(f"role '{args.name}': assumeRolePolicy {exc}", None)
        return
    for statement in statements(doc):
        if _allows_web_identity(statement):
            for problem in _problems(statement):
                report(f"role '{args.name}': {problem}", None)


def policies() -> list[ResourceValidationPolicy]:
    return [
        ResourceValidationPolicy(
            name="oidc-trust-pinned",
            description="IRSA and GitHub OIDC trust policies pin `aud` and exact `sub` values with StringEquals.",
            validate=_trust_pinned,
        )
    ]
