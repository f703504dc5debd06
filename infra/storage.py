"""Storage: S3 buckets for market data, artifacts and tuning results, plus the bucket their access logs go to.

Each bucket is versioned, SSE-KMS encrypted, blocked from public access, TLS-only and lifecycle-managed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import documents
from infra.kms import encryption_key
from infra.tagging import tagged

PURPOSES = ("market-data", "artifacts", "tuning-results")
# S3 log delivery cannot write to SSE-KMS buckets; the policy pack allows SSE-S3 only with this tag.
ACCESS_LOG_TAG = {"data-class": "access-logs"}


@dataclass(frozen=True)
class BucketRules:
    """Lifecycle for one bucket: how long old versions (and, optionally, current objects) live."""

    noncurrent_days: int
    expire_days: int | None = None
    infrequent_access_days: int | None = None


@dataclass(frozen=True)
class StorageArgs:
    name_prefix: str
    account_id: pulumi.Input[str]
    tuning_results_retention_days: int
    force_destroy: bool
    tags: Mapping[str, str]
    log_retention_days: int = 365

    def rules(self) -> dict[str, BucketRules]:
        return {
            # Raw data is re-read rarely after the first training runs.
            "market-data": BucketRules(noncurrent_days=90, infrequent_access_days=90),
            # Models and backtest reports are what gets promoted; keep old versions for rollbacks.
            "artifacts": BucketRules(noncurrent_days=180),
            "tuning-results": BucketRules(noncurrent_days=30, expire_days=self.tuning_results_retention_days),
        }


class Storage(pulumi.ComponentResource):
    bucket_names: dict[str, pulumi.Output[str]]
    bucket_arns: dict[str, pulumi.Output[str]]
    key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rlops:infra:Storage", name, None, opts)
        key = encryption_key(f"{name}-s3-key", f"{args.name_prefix}-s3", "S3 data encryption", args.tags, self)
        logs = self._bucket(
            f"{args.name_prefix}-access-logs",
            args,
            BucketRules(noncurrent_days=30, expire_days=args.log_retention_days),
            kms_key_arn=None,
            extra_tags=ACCESS_LOG_TAG,
        )
        self.bucket_names = {}
        self.bucket_arns = {}
        for purpose, rules in args.rules().items():
            bucket = self._bucket(f"{args.name_prefix}-{purpose}", args, rules, kms_key_arn=key.arn)
            aws.s3.BucketLogging(
                f"{args.name_prefix}-{purpose}",
                bucket=bucket.id,
                target_bucket=logs.id,
                target_prefix=f"{purpose}/",
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.bucket_names[purpose] = bucket.bucket
            self.bucket_arns[purpose] = bucket.arn
        self._bucket_policy(
            f"{args.name_prefix}-access-logs",
            logs,
            extra=pulumi.Output.all(args.account_id, list(self.bucket_arns.values()), logs.arn).apply(
                lambda parts: [_log_delivery_statement(parts[2], parts[0], parts[1])]
            ),
        )
        self.key_arn = key.arn
        self.register_outputs({"bucket_names": self.bucket_names, "key_arn": self.key_arn})

    def _bucket(
        self,
        name: str,
        args: StorageArgs,
        rules: BucketRules,
        *,
        kms_key_arn: pulumi.Input[str] | None,
        extra_tags: Mapping[str, str] | None = None,
    ) -> aws.s3.Bucket:
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(
            name,
            force_destroy=args.force_destroy,
            tags=tagged(args.tags, name, **(extra_tags or {})),
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            name,
            bucket=bucket.id,
            # ACLs off: access is decided by IAM and bucket policies only.
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        aws.s3.BucketPublicAccessBlock(
            name,
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketVersioning(
            name,
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        default = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
            sse_algorithm="aws:kms" if kms_key_arn is not None else "AES256",
            kms_master_key_id=kms_key_arn,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            name,
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=default,
                    # One data key per bucket instead of per object: far fewer KMS calls (and charges).
                    bucket_key_enabled=kms_key_arn is not None,
                )
            ],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(name, bucket=bucket.id, rules=_lifecycle_rules(rules), opts=child)
        if kms_key_arn is not None:
            self._bucket_policy(name, bucket)
        return bucket

    def _bucket_policy(
        self,
        name: str,
        bucket: aws.s3.Bucket,
        extra: pulumi.Input[Sequence[Mapping[str, object]]] | None = None,
    ) -> None:
        def render(parts: list[object]) -> str:
            arn, statements = parts
            assert isinstance(arn, str)
            extra_statements = list(statements) if isinstance(statements, list) else []
            return documents.to_json(documents.document(documents.tls_only_statement(arn), *extra_statements))

        aws.s3.BucketPolicy(
            name,
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, extra if extra is not None else []).apply(render),
            opts=pulumi.ResourceOptions(parent=self),
        )


def _log_delivery_statement(logs_arn: str, account_id: str, source_arns: Sequence[str]) -> dict[str, object]:
    """S3 server access logging writes as the logging service; limit it to our account and buckets."""
    return {
        "Sid": "S3ServerAccessLogsPolicy",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{logs_arn}/*",
        "Condition": {
            "StringEquals": {"aws:SourceAccount": account_id},
            "ArnLike": {"aws:SourceArn": sorted(source_arns)},
        },
    }


def _lifecycle_rules(rules: BucketRules) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    return [
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="retention",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=7
            ),
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=rules.noncurrent_days
            ),
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=rules.expire_days)
            if rules.expire_days is not None
            else None,
            transitions=[
                aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                    days=rules.infrequent_access_days, storage_class="STANDARD_IA"
                )
            ]
            if rules.infrequent_access_days is not None
            else None,
        )
    ]
