"""IAM: no Allow statement with a `*` action on a `*` resource, and no AdministratorAccess attachment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from policies.rlops_guard.props import DocumentError, as_list, known, parse_document, statements

# Resource types whose `policy` property is an IAM or resource-based policy document.
POLICY_DOCUMENT_TYPES = (
    "aws:iam/policy:Policy",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:ecr/repositoryPolicy:RepositoryPolicy",
    "aws:kms/key:Key",
    "aws:ec2/vpcEndpoint:VpcEndpoint",
)
ROLE = "aws:iam/role:Role"
ATTACHMENT_TYPES = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
    "aws:iam/policyAttachment:PolicyAttachment",
)
ADMIN_POLICY_SUFFIX = ":policy/AdministratorAccess"


def _documents(args: ResourceValidationArgs) -> Iterator[Any]:
    if args.resource_type in POLICY_DOCUMENT_TYPES:
        yield known(args.props, "policy")
    elif args.resource_type == ROLE:
        for inline in as_list(known(args.props, "inlinePolicies")):
            if isinstance(inline, dict):
                yield inline.get("policy")


def _is_admin(statement: dict[str, Any]) -> str | None:
    if statement.get("Effect", "Allow") != "Allow":
        return None
    resources = as_list(statement.get("Resource"))
    if "*" not in resources:
        return None
    if any(a in ("*", "*:*") for a in as_list(statement.get("Action"))):
        return "Action '*' on Resource '*'"
    if "NotAction" in statement:
        return "NotAction with Allow on Resource '*' (grants everything not listed)"
    return None


def _no_wildcard_admin(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for raw in _documents(args):
        try:
            doc = parse_document(raw)
        except DocumentError as exc:
            report(f"'{args.name}': {exc}", None)
            continue
        for index, statement in enumerate(statements(doc)):
            problem = _is_admin(statement)
            if problem:
                sid = statement.get("Sid", f"#{index}")
                report(f"'{args.name}': statement {sid} allows {problem}", None)
    arns = []
    if args.resource_type in ATTACHMENT_TYPES:
        arns = as_list(known(args.props, "policyArn"))
    elif args.resource_type == ROLE:
        arns = as_list(known(args.props, "managedPolicyArns"))
    for arn in arns:
        if isinstance(arn, str) and arn.endswith(ADMIN_POLICY_SUFFIX):
            report(f"'{args.name}': attaches {arn}", None)


def policies() -> list[ResourceValidationPolicy]:
    return [
        ResourceValidationPolicy(
            name="no-iam-wildcard-admin",
            description="No IAM statement allows action '*' on resource '*' (nor AdministratorAccess).",
            validate=_no_wildcard_admin,
        )
    ]
