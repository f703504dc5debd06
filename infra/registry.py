"""Registry: one ECR repository per image (training, tuning, backtesting, inference)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.kms import encryption_key
from infra.tagging import tagged

IMAGES = ("training", "tuning", "backtesting", "inference")


def lifecycle_policy(keep_tagged: int, untagged_days: int) -> str:
    """Expire untagged layers quickly and keep only the newest tagged images (storage is billed per GB)."""
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"expire untagged images after {untagged_days} days",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": untagged_days,
                    },
                    "action": {"type": "expire"},
                },
                {
                    "rulePriority": 2,
                    "description": f"keep the newest {keep_tagged} tagged images",
                    "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep_tagged},
                    "action": {"type": "expire"},
                },
            ]
        },
        sort_keys=True,
    )


@dataclass(frozen=True)
class RegistryArgs:
    name_prefix: str
    tags: Mapping[str, str]
    images: Sequence[str] = IMAGES
    keep_tagged_images: int = 50
    untagged_days: int = 7


class Registry(pulumi.ComponentResource):
    repository_urls: dict[str, pulumi.Output[str]]
    repository_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rlops:infra:Registry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        key = encryption_key(f"{name}-ecr-key", f"{args.name_prefix}-ecr", "ECR image encryption", args.tags, self)
        policy = lifecycle_policy(args.keep_tagged_images, args.untagged_days)
        self.repository_urls = {}
        self.repository_arns = {}
        for image in args.images:
            repo = aws.ecr.Repository(
                f"{name}-{image}",
                name=f"{args.name_prefix}/{image}",
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
                encryption_configurations=[
                    aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=key.arn)
                ],
                tags=tagged(args.tags, f"{args.name_prefix}/{image}"),
                opts=child,
            )
            aws.ecr.LifecyclePolicy(f"{name}-{image}", repository=repo.name, policy=policy, opts=child)
            self.repository_urls[image] = repo.repository_url
            self.repository_arns[image] = repo.arn
        self.register_outputs({"repository_urls": self.repository_urls})
