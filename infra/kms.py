"""Customer-managed KMS keys: rotated yearly, with a 30-day deletion window to undo a mistaken delete."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from infra.tagging import tagged


def encryption_key(
    name: str, alias: str, description: str, tags: Mapping[str, str], parent: pulumi.Resource
) -> aws.kms.Key:
    key = aws.kms.Key(
        name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        tags=tagged(tags, alias),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    aws.kms.Alias(name, name=f"alias/{alias}", target_key_id=key.key_id, opts=pulumi.ResourceOptions(parent=parent))
    return key
