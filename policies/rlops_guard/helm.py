"""Helm releases pin an exact chart version, so a preview shows what an update will install."""

from __future__ import annotations

import re

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from policies.rlops_guard.props import dig, known

HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
_EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def _pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in HELM_TYPES:
        return
    version = known(args.props, "version")
    if not isinstance(version, str) or not _EXACT_VERSION.match(version):
        report(f"helm release '{args.name}': chart version {version!r} is not an exact x.y.z version", None)


# Charts that put a load balancer in front of the cluster, and where their Service annotations live.
INGRESS_CONTROLLERS = {"ingress-nginx": ("controller", "service", "annotations")}
_SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"


def _internal_ingress(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in HELM_TYPES:
        return
    chart = known(args.props, "chart")
    if chart not in INGRESS_CONTROLLERS:
        return
    annotations = dig(known(args.props, "values"), *INGRESS_CONTROLLERS[chart])
    scheme = annotations.get(_SCHEME) if isinstance(annotations, dict) else None
    if scheme != "internal":
        report(
            f"helm release '{args.name}': the {chart} load balancer must be internal ({_SCHEME}: internal), "
            f"got {scheme!r}; expose it to the internet on purpose, through a reviewed exception",
            None,
        )


def policies() -> list[ResourceValidationPolicy]:
    return [
        ResourceValidationPolicy(
            name="helm-chart-pinned",
            description="Helm releases pin an exact chart version (no ranges, no latest).",
            validate=_pinned,
        ),
        ResourceValidationPolicy(
            name="ingress-controller-internal",
            description="Ingress controllers installed by Helm sit behind an internal load balancer (nothing open).",
            validate=_internal_ingress,
        ),
    ]
