"""S3 stack policies: each one passes a compliant bucket and catches the bucket that breaks it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from guard_cases import TAGS, assert_caught, resource, violations
from pulumi_policy import PolicyCustomTimeouts, PolicyResource, PolicyResourceOptions, StackValidationArgs
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from policies.rlops_guard import s3
from policies.rlops_guard.evaluate import InventoryResource

BUCKET = "aws:s3/bucket:Bucket"
ARN = "arn:aws:s3:::data-123"
TLS = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": [ARN, f"{ARN}/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def compliant(
    bucket_tags: dict[str, str] | None = None, algorithm: str = "aws:kms", **overrides: Any
) -> list[InventoryResource]:
    parts = {
        "bucket": resource(BUCKET, "data", bucket="data-123", arn=ARN, tags=bucket_tags or TAGS),
        "versioning": resource(s3.VERSIONING, "data", bucket="data-123", versioningConfiguration={"status": "Enabled"}),
        "encryption": resource(
            s3.ENCRYPTION,
            "data",
            bucket="data-123",
            rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": algorithm, "kmsMasterKeyId": "k"}}],
        ),
        "block": resource(
            s3.PUBLIC_ACCESS_BLOCK,
            "data",
            bucket="data-123",
            blockPublicAcls=True,
            blockPublicPolicy=True,
            ignorePublicAcls=True,
            restrictPublicBuckets=True,
        ),
        "policy": resource(s3.BUCKET_POLICY, "data", bucket="data-123", policy=json.dumps({"Statement": [TLS]})),
    }
    parts.update(overrides)
    return [r for r in parts.values() if r is not None]


RULES = ("s3-bucket-encrypted", "s3-bucket-versioned", "s3-public-access-blocked", "s3-tls-only")


@pytest.mark.parametrize("rule", RULES)
def test_compliant_bucket_passes(rule: str) -> None:
    assert violations(rule, *compliant()) == []


def test_unencrypted_bucket_is_caught() -> None:
    assert_caught("s3-bucket-encrypted", "data", *compliant(encryption=None), contains="no server-side encryption")


def test_sse_s3_is_caught_on_a_data_bucket_but_allowed_for_access_logs() -> None:
    assert_caught("s3-bucket-encrypted", "data", *compliant(algorithm="AES256"), contains="AES256")
    logs = compliant(bucket_tags={**TAGS, "data-class": "access-logs"}, algorithm="AES256")
    assert violations("s3-bucket-encrypted", *logs) == []


@pytest.mark.parametrize("versioning", [None, {"status": "Suspended"}])
def test_unversioned_bucket_is_caught(versioning: dict[str, str] | None) -> None:
    replaced = (
        None
        if versioning is None
        else resource(s3.VERSIONING, "data", bucket="data-123", versioningConfiguration=versioning)
    )
    assert_caught("s3-bucket-versioned", "data", *compliant(versioning=replaced), contains="versioning")


def test_missing_or_partial_public_access_block_is_caught() -> None:
    assert_caught("s3-public-access-blocked", "data", *compliant(block=None), contains="no BucketPublicAccessBlock")
    partial = resource(s3.PUBLIC_ACCESS_BLOCK, "data", bucket="data-123", blockPublicAcls=True, blockPublicPolicy=True)
    assert_caught("s3-public-access-blocked", "data", *compliant(block=partial), contains="ignorePublicAcls")


def test_account_wide_public_access_block_counts() -> None:
    account = resource(
        s3.ACCOUNT_PUBLIC_ACCESS_BLOCK,
        "account",
        blockPublicAcls=True,
        blockPublicPolicy=True,
        ignorePublicAcls=True,
        restrictPublicBuckets=True,
    )
    assert violations("s3-public-access-blocked", *compliant(block=None, account=account)) == []


@pytest.mark.parametrize(
    "statement",
    [
        None,
        {**TLS, "Effect": "Allow"},
        {**TLS, "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        {**TLS, "Resource": [ARN]},
        {**TLS, "Action": "s3:GetObject"},
    ],
    ids=["no-policy", "allow", "wrong-condition", "bucket-only", "one-action"],
)
def test_bucket_without_a_tls_deny_is_caught(statement: dict[str, Any] | None) -> None:
    policy = (
        None
        if statement is None
        else resource(s3.BUCKET_POLICY, "data", bucket="data-123", policy=json.dumps({"Statement": [statement]}))
    )
    assert_caught("s3-tls-only", "data", *compliant(policy=policy), contains="SecureTransport")


def test_malformed_bucket_policy_is_reported_not_crashed_on() -> None:
    broken = resource(s3.BUCKET_POLICY, "data", bucket="data-123", policy="{not json")
    assert_caught("s3-tls-only", "data", *compliant(policy=broken), contains="not valid JSON")


def test_companions_of_another_bucket_do_not_count() -> None:
    other = [resource(BUCKET, "other", bucket="other-9", arn="arn:aws:s3:::other-9", tags=TAGS)]
    found = violations("s3-bucket-versioned", *compliant(), *other)
    assert [v.resource_name for v in found] == ["other"]


def _preview_resource(typ: str, name: str, props: dict[str, Any]) -> PolicyResource:
    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    return PolicyResource(typ, unknown_checking_proxy(props), f"urn:{typ}::{name}", name, options, None, None, [], {})


def test_preview_with_unknown_bucket_names_links_through_property_dependencies() -> None:
    # On a first preview the bucket's auto-generated name is unknown; the engine still records which
    # resource each property came from.
    bucket = _preview_resource(BUCKET, "data", {"bucket": UNKNOWN_STRING_VALUE, "tags": TAGS})
    versioning = _preview_resource(
        s3.VERSIONING, "data", {"bucket": UNKNOWN_STRING_VALUE, "versioningConfiguration": {"status": "Enabled"}}
    )
    versioning.property_dependencies["bucket"] = [bucket]
    reports: list[tuple[str, str | None]] = []
    policy = next(p for p in s3.policies() if p.name == "s3-bucket-versioned")
    policy.validate(StackValidationArgs([bucket, versioning], {}), lambda m, u: reports.append((m, u)))
    assert reports == []
    policy.validate(StackValidationArgs([bucket], {}), lambda m, u: reports.append((m, u)))
    assert reports == [("bucket 'data': versioning is not Enabled (found no BucketVersioning)", bucket.urn)]
