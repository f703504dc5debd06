"""Helm releases pin an exact chart version, so a preview shows what an update will install."""

from __future__ import annotations

import re

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from policies.rlops_guard.props import known

HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
_EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def _pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in HELM_TYPES:
        return
    version = known(args.props, "version")
    if not isinstance(version, str) or not _EXACT_VERSION.match(version):
        report(f"helm release '{args.name}': chart version {version!r} is not an exact x.y.z version", None)


def policies() -> list[ResourceValidationPolicy]:
    return [
        ResourceValidationPolicy(
            name="helm-chart-pinned",
            description="Helm releases pin an exact chart version (no ranges, no latest).",
            validate=_pinned,
        )
    ]
