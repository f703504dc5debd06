"""EKS: private API endpoint (public only from listed CIDRs), KMS envelope encryption of secrets, and
control-plane logging. Checks both the pulumi-eks component and the aws:eks Cluster it creates."""

from __future__ import annotations

from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from policies.rlops_guard.props import as_list, dig, known

COMPONENT = "eks:index:Cluster"
CLUSTER = "aws:eks/cluster:Cluster"
REQUIRED_LOG_TYPES = ("api", "audit", "authenticator")
OPEN_CIDRS = ("0.0.0.0/0", "::/0")


def _endpoint(args: ResourceValidationArgs) -> tuple[Any, Any, list[Any]]:
    if args.resource_type == COMPONENT:
        props: Any = args.props
        # pulumi-eks leaves the public endpoint on unless told otherwise.
        public = known(props, "endpointPublicAccess")
        return (
            known(props, "endpointPrivateAccess"),
            True if public is None else public,
            as_list(known(props, "publicAccessCidrs")),
        )
    vpc = dig(args.props, "vpcConfig") or {}
    public = dig(vpc, "endpointPublicAccess")
    return dig(vpc, "endpointPrivateAccess"), True if public is None else public, as_list(dig(vpc, "publicAccessCidrs"))


def _private_endpoint(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (COMPONENT, CLUSTER):
        return
    private, public, cidrs = _endpoint(args)
    if private is not True:
        report(f"cluster '{args.name}': endpointPrivateAccess must be true", None)
    if public is True:
        if not cidrs:
            report(f"cluster '{args.name}': public endpoint is on with no publicAccessCidrs (open to all)", None)
        wide = [c for c in cidrs if c in OPEN_CIDRS]
        if wide:
            report(f"cluster '{args.name}': publicAccessCidrs include {wide}; list your egress ranges instead", None)


def _secrets_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == COMPONENT:
        if not known(args.props, "encryptionConfigKeyArn"):
            report(f"cluster '{args.name}': encryptionConfigKeyArn (KMS key for secrets) is not set", None)
    elif args.resource_type == CLUSTER:
        config = dig(args.props, "encryptionConfig") or {}
        if "secrets" not in as_list(dig(config, "resources")) or not dig(config, "provider", "keyArn"):
            report(f"cluster '{args.name}': encryptionConfig must encrypt 'secrets' with a KMS key", None)


def _logging(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (COMPONENT, CLUSTER):
        return
    enabled = set(as_list(known(args.props, "enabledClusterLogTypes")))
    missing = [t for t in REQUIRED_LOG_TYPES if t not in enabled]
    if missing:
        report(f"cluster '{args.name}': control-plane log types {missing} are not enabled", None)


def policies() -> list[ResourceValidationPolicy]:
    return [
        ResourceValidationPolicy(
            name="eks-private-endpoint",
            description="EKS API endpoint is private; a public endpoint is only allowed from listed CIDRs.",
            validate=_private_endpoint,
        ),
        ResourceValidationPolicy(
            name="eks-secrets-encryption",
            description="EKS encrypts Kubernetes secrets with a KMS key.",
            validate=_secrets_encryption,
        ),
        ResourceValidationPolicy(
            name="eks-control-plane-logging",
            description="EKS ships api, audit and authenticator control-plane logs.",
            validate=_logging,
        ),
    ]
