"""Registry component under mocks: one repository per image, scanned, immutable, KMS, lifecycle-managed."""

from __future__ import annotations

import json

from pulumi_harness import run_with_mocks

from infra.registry import IMAGES, Registry, RegistryArgs, lifecycle_policy

TAGS = {"project": "rlops", "environment": "dev", "owner": "o", "cost-center": "c"}


def test_one_scanned_immutable_kms_repository_per_image() -> None:
    mocks = run_with_mocks(lambda: Registry("reg", RegistryArgs(name_prefix="rlops-dev", tags=TAGS)).repository_urls)
    repos = {r.inputs["name"]: r.inputs for r in mocks.of_type("aws:ecr/repository:Repository")}
    assert set(repos) == {f"rlops-dev/{image}" for image in IMAGES}
    assert set(IMAGES) == {"training", "tuning", "backtesting", "inference"}
    (key,) = mocks.of_type("aws:kms/key:Key")
    for repo in repos.values():
        assert repo["imageTagMutability"] == "IMMUTABLE"
        assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repo["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": key.outputs["arn"]}]
    policies = mocks.of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy")
    assert sorted(p.inputs["repository"] for p in policies) == sorted(repos)
    (urls,) = mocks.results
    assert urls["inference"].endswith("/rlops-dev/inference")


def test_lifecycle_expires_untagged_first_then_keeps_newest_tagged() -> None:
    rules = json.loads(lifecycle_policy(keep_tagged=20, untagged_days=3))["rules"]
    assert [r["rulePriority"] for r in rules] == [1, 2]
    assert rules[0]["selection"] == {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 3,
    }
    assert rules[1]["selection"]["countNumber"] == 20
    assert all(r["action"] == {"type": "expire"} for r in rules)
