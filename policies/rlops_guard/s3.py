"""S3: encryption, versioning, public access block and TLS-only, checked per bucket across the stack.

In pulumi-aws v7 those settings are separate resources (BucketVersioning, BucketPublicAccessBlock, ...), so
these are stack policies that look, for each bucket, for the companion resource pointing at it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pulumi_policy import (
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.rlops_guard.props import DocumentError, as_list, dig, find_values, known, parse_document, statements

BUCKET = "aws:s3/bucket:Bucket"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ACCOUNT_PUBLIC_ACCESS_BLOCK = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
# S3 server access logs cannot be delivered to an SSE-KMS bucket, so a bucket tagged as the log target may
# use SSE-S3 (AES256) instead.
ACCESS_LOG_TAG = ("data-class", "access-logs")
_BLOCK_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def _buckets(args: StackValidationArgs) -> Iterator[PolicyResource]:
    return (r for r in args.resources if r.resource_type == BUCKET)


def _attached(args: StackValidationArgs, child_type: str, bucket: PolicyResource) -> list[PolicyResource]:
    """Companion resources of `child_type` whose `bucket` property points at `bucket`."""
    ids = {known(bucket.props, "bucket"), known(bucket.props, "id")} - {None}
    found = []
    for resource in args.resources:
        if resource.resource_type != child_type:
            continue
        deps = resource.property_dependencies.get("bucket", [])
        if any(dep.urn == bucket.urn for dep in deps) or known(resource.props, "bucket") in ids:
            found.append(resource)
    return found


def _report(report: ReportViolation, bucket: PolicyResource, message: str) -> None:
    report(f"bucket '{bucket.name}': {message}", bucket.urn)


def _check_encryption(args: StackValidationArgs, report: ReportViolation) -> None:
    for bucket in _buckets(args):
        configs = [bucket.props] + [c.props for c in _attached(args, ENCRYPTION, bucket)]
        algorithms = {a for props in configs for a in find_values(props, "sseAlgorithm") if isinstance(a, str)}
        if not algorithms:
            _report(report, bucket, "has no server-side encryption configuration; use SSE-KMS")
            continue
        tags = dig(bucket.props, "tags") or {}
        allowed = KMS_ALGORITHMS + (("AES256",) if tags.get(ACCESS_LOG_TAG[0]) == ACCESS_LOG_TAG[1] else ())
        weak = sorted(a for a in algorithms if a not in allowed)
        if weak:
            _report(report, bucket, f"encrypts with {weak}; only {list(allowed)} are allowed here")


def _check_versioning(args: StackValidationArgs, report: ReportViolation) -> None:
    for bucket in _buckets(args):
        statuses = [dig(v.props, "versioningConfiguration", "status") for v in _attached(args, VERSIONING, bucket)]
        inline = dig(bucket.props, "versioning", "enabled") is True or any(
            v is True for v in find_values(dig(bucket.props, "versioning") or {}, "enabled")
        )
        if not inline and "Enabled" not in statuses:
            _report(report, bucket, f"versioning is not Enabled (found {statuses or 'no BucketVersioning'})")


def _check_public_access_block(args: StackValidationArgs, report: ReportViolation) -> None:
    account_wide = any(
        r.resource_type == ACCOUNT_PUBLIC_ACCESS_BLOCK and all(known(r.props, f) is True for f in _BLOCK_FLAGS)
        for r in args.resources
    )
    for bucket in _buckets(args):
        if account_wide:
            continue
        blocks = _attached(args, PUBLIC_ACCESS_BLOCK, bucket)
        if not blocks:
            _report(report, bucket, "has no BucketPublicAccessBlock")
            continue
        for block in blocks:
            off = [f for f in _BLOCK_FLAGS if known(block.props, f) is not True]
            if off:
                _report(report, bucket, f"public access block '{block.name}' leaves {off} off")


def _denies_insecure_transport(statement: dict[str, Any]) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    secure = dig(statement, "Condition", "Bool", "aws:SecureTransport")
    if str(secure).lower() != "false":
        return False
    actions = as_list(statement.get("Action"))
    resources = as_list(statement.get("Resource"))
    covers_actions = any(a in ("s3:*", "*") for a in actions)
    covers_objects = any(isinstance(r, str) and (r == "*" or r.endswith("/*")) for r in resources)
    return covers_actions and covers_objects


def _check_tls_only(args: StackValidationArgs, report: ReportViolation) -> None:
    for bucket in _buckets(args):
        documents = [known(bucket.props, "policy")] + [
            known(p.props, "policy") for p in _attached(args, BUCKET_POLICY, bucket)
        ]
        enforced = False
        for raw in documents:
            try:
                doc = parse_document(raw)
            except DocumentError as exc:
                _report(report, bucket, str(exc))
                continue
            enforced = enforced or any(_denies_insecure_transport(s) for s in statements(doc))
        if not enforced:
            _report(
                report,
                bucket,
                "bucket policy lacks a Deny of s3:* on the bucket's objects when aws:SecureTransport is false",
            )


def policies() -> list[StackValidationPolicy]:
    return [
        StackValidationPolicy(
            name="s3-bucket-encrypted",
            description="Every S3 bucket has default encryption with a KMS key (SSE-S3 only for access logs).",
            validate=_check_encryption,
        ),
        StackValidationPolicy(
            name="s3-bucket-versioned",
            description="Every S3 bucket has versioning Enabled.",
            validate=_check_versioning,
        ),
        StackValidationPolicy(
            name="s3-public-access-blocked",
            description="Every S3 bucket has a public access block with all four settings on.",
            validate=_check_public_access_block,
        ),
        StackValidationPolicy(
            name="s3-tls-only",
            description="Every S3 bucket policy denies requests that do not use TLS.",
            validate=_check_tls_only,
        ),
    ]
