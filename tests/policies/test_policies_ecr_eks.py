"""ECR and EKS resource policies: compliant resources pass, each violation is caught by name."""

from __future__ import annotations

from typing import Any

import pytest
from guard_cases import assert_caught, resource, violations

REPO = "aws:ecr/repository:Repository"
COMPONENT = "eks:index:Cluster"
CLUSTER = "aws:eks/cluster:Cluster"
GOOD_REPO = {"imageTagMutability": "IMMUTABLE", "imageScanningConfiguration": {"scanOnPush": True}}
GOOD_COMPONENT = {
    "endpointPrivateAccess": True,
    "endpointPublicAccess": False,
    "encryptionConfigKeyArn": "arn:aws:kms:us-east-1:1:key/k",
    "enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
}
GOOD_CLUSTER = {
    "vpcConfig": {"endpointPrivateAccess": True, "endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]},
    "encryptionConfig": {"resources": ["secrets"], "provider": {"keyArn": "arn:aws:kms:us-east-1:1:key/k"}},
    "enabledClusterLogTypes": ["api", "audit", "authenticator"],
}
EKS_RULES = ("eks-private-endpoint", "eks-secrets-encryption", "eks-control-plane-logging")


@pytest.mark.parametrize("rule", ["ecr-scan-on-push", "ecr-immutable-tags"])
def test_compliant_repository_passes(rule: str) -> None:
    assert violations(rule, resource(REPO, "training", **GOOD_REPO)) == []


@pytest.mark.parametrize("scanning", [{"scanOnPush": False}, None])
def test_repository_without_scan_on_push_is_caught(scanning: dict[str, bool] | None) -> None:
    props = {**GOOD_REPO, "imageScanningConfiguration": scanning}
    assert_caught("ecr-scan-on-push", "training", resource(REPO, "training", **props), contains="scanOnPush")


@pytest.mark.parametrize("mutability", ["MUTABLE", "IMMUTABLE_WITH_EXCLUSION", None])
def test_repository_with_mutable_tags_is_caught(mutability: str | None) -> None:
    props = {k: v for k, v in {**GOOD_REPO, "imageTagMutability": mutability}.items() if v is not None}
    assert_caught("ecr-immutable-tags", "training", resource(REPO, "training", **props), contains="not IMMUTABLE")


@pytest.mark.parametrize("rule", EKS_RULES)
@pytest.mark.parametrize(("typ", "props"), [(COMPONENT, GOOD_COMPONENT), (CLUSTER, GOOD_CLUSTER)])
def test_compliant_clusters_pass(rule: str, typ: str, props: dict[str, Any]) -> None:
    assert violations(rule, resource(typ, "eks", **props)) == []


PRIVATE_ENDPOINT_BREAKS = [
    (COMPONENT, {**GOOD_COMPONENT, "endpointPrivateAccess": False}, "endpointPrivateAccess"),
    # pulumi-eks turns the public endpoint on when the flag is left out.
    (COMPONENT, {k: v for k, v in GOOD_COMPONENT.items() if k != "endpointPublicAccess"}, "no publicAccessCidrs"),
    (COMPONENT, {**GOOD_COMPONENT, "endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}, "0.0.0.0/0"),
    (CLUSTER, {**GOOD_CLUSTER, "vpcConfig": {"endpointPrivateAccess": False}}, "endpointPrivateAccess"),
    (CLUSTER, {**GOOD_CLUSTER, "vpcConfig": {"endpointPrivateAccess": True, "publicAccessCidrs": ["::/0"]}}, "::/0"),
]


@pytest.mark.parametrize(("typ", "props", "contains"), PRIVATE_ENDPOINT_BREAKS)
def test_public_or_unrestricted_endpoint_is_caught(typ: str, props: dict[str, Any], contains: str) -> None:
    assert_caught("eks-private-endpoint", "eks", resource(typ, "eks", **props), contains=contains)


@pytest.mark.parametrize(
    ("typ", "props"),
    [
        (COMPONENT, {k: v for k, v in GOOD_COMPONENT.items() if k != "encryptionConfigKeyArn"}),
        (CLUSTER, {**GOOD_CLUSTER, "encryptionConfig": {"resources": [], "provider": {"keyArn": "k"}}}),
        (CLUSTER, {k: v for k, v in GOOD_CLUSTER.items() if k != "encryptionConfig"}),
    ],
)
def test_unencrypted_secrets_are_caught(typ: str, props: dict[str, Any]) -> None:
    assert_caught("eks-secrets-encryption", "eks", resource(typ, "eks", **props), contains="KMS")


@pytest.mark.parametrize("logs", [[], ["api", "scheduler"], None])
def test_missing_control_plane_logs_are_caught(logs: list[str] | None) -> None:
    props = {**GOOD_COMPONENT, "enabledClusterLogTypes": logs}
    assert_caught("eks-control-plane-logging", "eks", resource(COMPONENT, "eks", **props), contains="audit")
