"""Storage component under mocks: every bucket versioned, encrypted, private, TLS-only, lifecycle-managed and
access-logged to a dedicated log bucket."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi_harness import RecordingMocks, run_with_mocks

from infra.storage import PURPOSES, Storage, StorageArgs

TAGS = {"project": "rlops", "environment": "prod", "owner": "o", "cost-center": "c"}


@pytest.fixture(scope="module")
def mocks() -> RecordingMocks:
    args = StorageArgs(
        name_prefix="rlops-prod",
        account_id="123456789012",
        tuning_results_retention_days=120,
        force_destroy=False,
        tags=TAGS,
    )
    return run_with_mocks(lambda: Storage("st", args).bucket_names, stack="prod")


def _for(mocks: RecordingMocks, typ: str, bucket: str) -> dict[str, Any]:
    (match,) = [r.inputs for r in mocks.of_type(typ) if r.inputs["bucket"] == bucket]
    return match


def test_three_data_buckets_and_a_log_bucket(mocks: RecordingMocks) -> None:
    names = {b.name for b in mocks.of_type("aws:s3/bucket:Bucket")}
    assert names == {f"rlops-prod-{p}" for p in PURPOSES} | {"rlops-prod-access-logs"}
    assert all(b.inputs["forceDestroy"] is False for b in mocks.of_type("aws:s3/bucket:Bucket"))
    (outputs,) = mocks.results
    assert set(outputs) == set(PURPOSES)


@pytest.mark.parametrize("purpose", PURPOSES)
def test_data_bucket_is_versioned_kms_encrypted_private_tls_only_and_logged(
    mocks: RecordingMocks, purpose: str
) -> None:
    bucket = mocks.named("aws:s3/bucket:Bucket", f"rlops-prod-{purpose}").outputs
    name = bucket["bucket"]
    (key,) = mocks.of_type("aws:kms/key:Key")
    assert _for(mocks, "aws:s3/bucketVersioning:BucketVersioning", name)["versioningConfiguration"] == {
        "status": "Enabled"
    }
    (rule,) = _for(
        mocks, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", name
    )["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": key.outputs["arn"],
    }
    assert rule["bucketKeyEnabled"] is True
    block = _for(mocks, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", name)
    assert all(
        block[f] is True for f in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    (statement,) = json.loads(_for(mocks, "aws:s3/bucketPolicy:BucketPolicy", name)["policy"])["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == [bucket["arn"], f"{bucket['arn']}/*"]
    logs = mocks.named("aws:s3/bucket:Bucket", "rlops-prod-access-logs").outputs["bucket"]
    logging = _for(mocks, "aws:s3/bucketLogging:BucketLogging", name)
    assert (logging["targetBucket"], logging["targetPrefix"]) == (logs, f"{purpose}/")
    (lifecycle,) = _for(mocks, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", name)["rules"]
    assert lifecycle["status"] == "Enabled"
    assert lifecycle["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}
    assert lifecycle["noncurrentVersionExpiration"]["noncurrentDays"] > 0


def test_tuning_results_expire_after_the_configured_retention(mocks: RecordingMocks) -> None:
    name = mocks.named("aws:s3/bucket:Bucket", "rlops-prod-tuning-results").outputs["bucket"]
    (rule,) = _for(mocks, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", name)["rules"]
    assert rule["expiration"] == {"days": 120}


def test_log_bucket_uses_sse_s3_and_admits_only_our_buckets_log_delivery(mocks: RecordingMocks) -> None:
    logs = mocks.named("aws:s3/bucket:Bucket", "rlops-prod-access-logs")
    assert logs.inputs["tags"]["data-class"] == "access-logs"
    name = logs.outputs["bucket"]
    (rule,) = _for(
        mocks, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", name
    )["rules"]
    # S3 server access logging cannot write into SSE-KMS buckets.
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    statements = json.loads(_for(mocks, "aws:s3/bucketPolicy:BucketPolicy", name)["policy"])["Statement"]
    tls, delivery = statements
    assert tls["Sid"] == "DenyInsecureTransport"
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Resource"] == f"{logs.outputs['arn']}/*"
    data_arns = sorted(mocks.named("aws:s3/bucket:Bucket", f"rlops-prod-{p}").outputs["arn"] for p in PURPOSES)
    assert delivery["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnLike": {"aws:SourceArn": data_arns},
    }
