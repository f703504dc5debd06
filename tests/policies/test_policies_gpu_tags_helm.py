"""GPU cost guard, required tags and pinned Helm charts: compliant passes, violations are caught."""

from __future__ import annotations

from typing import Any

import pytest
from guard_cases import TAGS, assert_caught, resource, violations
from pulumi_policy import PolicyProviderResource

from policies.rlops_guard.evaluate import InventoryResource
from policies.rlops_guard.tags import is_taggable

MNG = "eks:index:ManagedNodeGroup"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}


def _gpu(**overrides: Any) -> dict[str, Any]:
    return {
        "amiType": "AL2023_x86_64_NVIDIA",
        "instanceTypes": ["g5.xlarge"],
        "taints": [TAINT],
        "scalingConfig": {"minSize": 0.0, "desiredSize": 0.0, "maxSize": 4.0},
    } | overrides


@pytest.mark.parametrize(
    ("typ", "props"),
    [
        (MNG, _gpu()),
        (NODE_GROUP, _gpu(scalingConfig={"minSize": 0, "maxSize": 8, "desiredSize": 0})),
        # A CPU group needs neither the taint nor the cap.
        (MNG, {"amiType": "AL2023_x86_64_STANDARD", "instanceTypes": ["m7i.large"], "scalingConfig": {"maxSize": 50}}),
    ],
)
def test_tainted_capped_gpu_groups_and_cpu_groups_pass(typ: str, props: dict[str, Any]) -> None:
    assert violations("gpu-node-group-guard", resource(typ, "ng", **props)) == []


@pytest.mark.parametrize(
    ("props", "contains"),
    [
        (_gpu(taints=[]), "NO_SCHEDULE taint"),
        (_gpu(taints=[{**TAINT, "effect": "PREFER_NO_SCHEDULE"}]), "NO_SCHEDULE taint"),
        (_gpu(scalingConfig={"minSize": 0, "maxSize": 9, "desiredSize": 0}), "exceeds the cap of 8"),
        (_gpu(scalingConfig=None), "maxSize must be set"),
        # Detected as GPU by instance family even without the NVIDIA AMI type.
        (_gpu(amiType="AL2023_x86_64_STANDARD", instanceTypes=["p5.48xlarge"], taints=None), "taint"),
        (_gpu(amiType=None, instanceTypes=None, gpu=True, taints=None), "taint"),
    ],
)
def test_untainted_or_uncapped_gpu_groups_are_caught(props: dict[str, Any], contains: str) -> None:
    assert_caught("gpu-node-group-guard", "ng", resource(MNG, "ng", **props), contains=contains)


def test_gpu_cap_is_configurable() -> None:
    group = resource(MNG, "ng", **_gpu())
    assert_caught("gpu-node-group-guard", "ng", group, contains="cap of 2", config={"maxNodesPerGroup": 2})


@pytest.mark.parametrize(
    ("typ", "taggable"),
    [
        ("aws:ec2/vpc:Vpc", True),
        ("aws:s3/bucket:Bucket", True),
        ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", True),
        ("eks:index:Cluster", True),
        ("eks:index:ManagedNodeGroup", True),
        ("aws:s3/bucketVersioning:BucketVersioning", False),
        ("aws:iam/rolePolicy:RolePolicy", False),
        ("aws:kms/alias:Alias", False),
        ("kubernetes:helm.sh/v3:Release", False),
        ("rlops:infra:Network", False),
        ("aws:ec2/noSuchThing:NoSuchThing", False),
    ],
)
def test_taggability_comes_from_the_sdk(typ: str, taggable: bool) -> None:
    assert is_taggable(typ) is taggable


def test_fully_tagged_and_untaggable_resources_pass() -> None:
    assert violations("required-tags", resource("aws:ec2/vpc:Vpc", "vpc", tags={**TAGS, "Name": "x"})) == []
    assert violations("required-tags", resource("aws:iam/rolePolicy:RolePolicy", "p", policy="{}")) == []


@pytest.mark.parametrize("missing", ["project", "environment", "owner", "cost-center"])
def test_each_missing_required_tag_is_caught(missing: str) -> None:
    tags = {k: v for k, v in TAGS.items() if k != missing}
    assert_caught("required-tags", "vpc", resource("aws:ec2/vpc:Vpc", "vpc", tags=tags), contains=f"'{missing}'")


def test_untagged_and_blank_tags_are_caught() -> None:
    assert_caught("required-tags", "bucket", resource("aws:s3/bucket:Bucket", "bucket"), contains="cost-center")
    blank = {**TAGS, "owner": " "}
    assert_caught("required-tags", "key", resource("aws:kms/key:Key", "key", tags=blank), contains="owner")


def test_provider_default_tags_count() -> None:
    provider = PolicyProviderResource("pulumi:providers:aws", {"defaultTags": {"tags": TAGS}}, "urn:provider", "aws")
    vpc = InventoryResource("aws:ec2/vpc:Vpc", "vpc", {"tags": {"Name": "x"}}, provider=provider)
    assert violations("required-tags", vpc) == []


def test_required_tag_list_is_configurable() -> None:
    vpc = resource("aws:ec2/vpc:Vpc", "vpc", tags=TAGS)
    assert_caught("required-tags", "vpc", vpc, contains="data-owner", config={"requiredTags": ["data-owner"]})


@pytest.mark.parametrize("version", ["0.17.1", "v1.4.2", "81.6.9", "1.0.0-rc.1"])
def test_exact_chart_versions_pass(version: str) -> None:
    release = resource("kubernetes:helm.sh/v3:Release", "chart", chart="c", version=version)
    assert violations("helm-chart-pinned", release) == []


@pytest.mark.parametrize("version", [None, "", "latest", ">=1.0.0", "1.x", "~1.2.0", "1.2"])
def test_floating_chart_versions_are_caught(version: str | None) -> None:
    props = {"chart": "c"} | ({} if version is None else {"version": version})
    release = resource("kubernetes:helm.sh/v4:Chart", "chart", **props)
    assert_caught("helm-chart-pinned", "chart", release, contains="not an exact")


def _nginx(annotations: dict[str, str] | None) -> object:
    values = {} if annotations is None else {"controller": {"service": {"annotations": annotations}}}
    return resource("kubernetes:helm.sh/v3:Release", "ingress", chart="ingress-nginx", version="4.12.1", values=values)


def test_an_internal_ingress_controller_passes() -> None:
    release = _nginx({"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"})
    assert violations("ingress-controller-internal", release) == []


@pytest.mark.parametrize(
    "annotations", [None, {}, {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing"}]
)
def test_an_internet_facing_ingress_controller_is_caught(annotations: dict[str, str] | None) -> None:
    assert_caught("ingress-controller-internal", "ingress", _nginx(annotations), contains="must be internal")


def test_other_charts_are_not_judged_as_ingress_controllers() -> None:
    release = resource("kubernetes:helm.sh/v3:Release", "chart", chart="argo-cd", version="9.4.2", values={})
    assert violations("ingress-controller-internal", release) == []
