"""The whole program, as `pulumi up` runs it (infra/__main__.py), under mocks for each stack: every registered
resource goes through every policy of the pack, and the exported outputs are what users rely on."""

from __future__ import annotations

import json
import runpy
from collections.abc import Callable
from typing import Any

import pulumi
import pytest
from pulumi_harness import ROOT, RecordingMocks, run_with_mocks

from policies.rlops_guard.evaluate import evaluate
from policies.rlops_guard.pack import all_policies

STACKS = ("dev", "staging", "prod")


def _run_main() -> Any:
    runpy.run_path(str(ROOT / "infra" / "__main__.py"), run_name="__main__")
    outputs = pulumi.runtime.get_root_resource().outputs  # type: ignore[union-attr]
    return pulumi.Output.all(
        names=sorted(outputs),
        kubeconfig_secret=pulumi.Output.from_input(outputs["kubeconfig"]).is_secret(),
        registry_urls=outputs["registry_urls"],
        bucket_names=outputs["bucket_names"],
        role_arns=outputs["role_arns"],
    )


@pytest.fixture(scope="module")
def stacks() -> dict[str, RecordingMocks]:
    # One run per stack, shared by the read-only checks below (each run gets its own fresh mocks).
    return {stack: run_with_mocks(_run_main, stack=stack) for stack in STACKS}


@pytest.mark.parametrize("stack", STACKS)
def test_every_policy_passes_on_every_registered_resource(stacks: dict[str, RecordingMocks], stack: str) -> None:
    inventory = stacks[stack].inventory()
    assert len(inventory) > 100
    result = evaluate(inventory)
    assert result.passed, result.report()
    assert result.violations == ()


@pytest.mark.parametrize("stack", STACKS)
def test_outputs_cover_kubeconfig_registries_buckets_and_roles(stacks: dict[str, RecordingMocks], stack: str) -> None:
    (outputs,) = stacks[stack].results
    assert outputs["kubeconfig_secret"] is True
    assert {"kubeconfig", "registry_urls", "bucket_names", "role_arns", "cluster_name", "vpc_id"} <= set(
        outputs["names"]
    )
    assert set(outputs["registry_urls"]) == {"training", "tuning", "backtesting", "inference"}
    assert all(".dkr.ecr.us-east-1.amazonaws.com/rlops-" in url for url in outputs["registry_urls"].values())
    assert set(outputs["bucket_names"]) == {"market-data", "artifacts", "tuning-results"}
    assert set(outputs["role_arns"]) == {"workflows", "ray", "inference", "cluster-autoscaler", "github-actions"}


@pytest.mark.parametrize(("stack", "zones", "nats"), [("dev", 2, 1), ("staging", 3, 1), ("prod", 3, 3)])
def test_zones_and_nat_gateways_per_stack(stacks: dict[str, RecordingMocks], stack: str, zones: int, nats: int) -> None:
    mocks = stacks[stack]
    subnets = mocks.of_type("aws:ec2/subnet:Subnet")
    assert len({s.inputs["availabilityZone"] for s in subnets}) == zones
    assert len(subnets) == 2 * zones
    assert len(mocks.of_type("aws:ec2/natGateway:NatGateway")) == nats


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_sits_under_a_component(stacks: dict[str, RecordingMocks], stack: str) -> None:
    mocks = stacks[stack]
    # A URN's type part lists the parent chain: rlops:infra:Network$aws:ec2/vpc:Vpc. Only the stack-wide
    # AWS provider sits directly under the stack.
    orphans = [u for u in mocks.urns if "rlops:infra:" not in u.split("::")[2]]
    assert [u.rsplit("::", 1)[-1] for u in orphans] == [f"rlops-{stack}-aws"]
    assert {r.type for r in mocks.resources if not r.custom} >= {
        "rlops:infra:Network",
        "rlops:infra:Cluster",
        "rlops:infra:Registry",
        "rlops:infra:Storage",
        "rlops:infra:Identity",
        "rlops:infra:Addons",
    }


@pytest.mark.parametrize("stack", STACKS)
def test_aws_resources_and_eks_components_use_the_stacks_default_tagged_provider(
    stacks: dict[str, RecordingMocks], stack: str
) -> None:
    mocks = stacks[stack]
    (provider,) = mocks.of_type("pulumi:providers:aws")
    assert json.loads(provider.inputs["defaultTags"])["tags"] == {
        "project": "rlops",
        "environment": stack,
        "owner": "ml-platform",
        "cost-center": "rl-research" if stack == "dev" else "rl-trading",
    }
    assert provider.inputs["region"] == "us-east-1"
    reference = f"{mocks.urn_of(provider)}::{provider.name}-id"
    aws_resources = [r for r in mocks.resources if r.type.startswith("aws:")]
    assert aws_resources and all(r.provider == reference for r in aws_resources)
    # pulumi-eks creates its own AWS resources in its plugin; it gets the provider through this map.
    eks_components = [r for r in mocks.resources if r.type.startswith("eks:")]
    assert eks_components and all(mocks.provider_maps[(r.type, r.name)]["aws"] == reference for r in eks_components)


def _mutate(
    mocks: RecordingMocks, typ: str, change: Callable[[dict[str, Any]], None], where: str
) -> tuple[str, list[Any]]:
    """Break the first resource of `typ` whose name contains `where` (inputs and outputs alike) in a copy
    of the inventory."""
    inventory = mocks.inventory()
    for index, item in enumerate(inventory):
        if item.resource_type == typ and where in item.name:
            inputs, outputs = dict(item.inputs), dict(item.outputs or {})
            change(inputs)
            change(outputs)
            inventory[index] = type(item)(item.resource_type, item.name, inputs, outputs, item.urn, item.provider)
            return item.name, inventory
    raise AssertionError(f"no {typ} named *{where}* registered")


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda props: props.pop(key, None)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda props: props.__setitem__(key, value)


def _update(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda props: props.update(values)


def _wildcard_subject(props: dict[str, Any]) -> None:
    trust = json.loads(props["assumeRolePolicy"])
    condition = trust["Statement"][0]["Condition"]
    clauses = condition.pop("StringEquals")
    condition["StringLike"] = {k: ("repo:rlops/rlops:*" if k.endswith(":sub") else v) for k, v in clauses.items()}
    props["assumeRolePolicy"] = json.dumps(trust)


BROKEN = [
    (
        "ecr-scan-on-push",
        "aws:ecr/repository:Repository",
        "",
        _set("imageScanningConfiguration", {"scanOnPush": False}),
    ),
    ("ecr-immutable-tags", "aws:ecr/repository:Repository", "", _set("imageTagMutability", "MUTABLE")),
    ("eks-private-endpoint", "eks:index:Cluster", "", _set("endpointPrivateAccess", False)),
    ("eks-secrets-encryption", "eks:index:Cluster", "", _drop("encryptionConfigKeyArn")),
    ("eks-control-plane-logging", "eks:index:Cluster", "", _set("enabledClusterLogTypes", ["api"])),
    (
        "no-open-ingress",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "",
        _update(cidrIpv4="0.0.0.0/0", fromPort=22, toPort=22),
    ),
    (
        "no-iam-wildcard-admin",
        "aws:iam/rolePolicy:RolePolicy",
        "",
        _set("policy", '{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'),
    ),
    ("oidc-trust-pinned", "aws:iam/role:Role", "github-actions", _wildcard_subject),
    ("gpu-node-group-guard", "eks:index:ManagedNodeGroup", "gpu", _drop("taints")),
    # The provider's default tags fill in what a resource leaves out, so only a blank override breaks them.
    ("required-tags", "aws:ec2/vpc:Vpc", "", _set("tags", {"owner": " "})),
    ("helm-chart-pinned", "kubernetes:helm.sh/v3:Release", "", _set("version", ">=1.0.0")),
    ("ingress-controller-internal", "kubernetes:helm.sh/v3:Release", "ingress-nginx", _set("values", {})),
    ("s3-bucket-versioned", "aws:s3/bucketVersioning:BucketVersioning", "", _set("versioningConfiguration", {})),
    (
        "s3-bucket-encrypted",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "market-data",
        _set("rules", [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]),
    ),
    (
        "s3-public-access-blocked",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "",
        _set("blockPublicPolicy", False),
    ),
    ("s3-tls-only", "aws:s3/bucketPolicy:BucketPolicy", "artifacts", _set("policy", '{"Statement": []}')),
]


def test_every_policy_has_a_broken_stack_case() -> None:
    assert {case[0] for case in BROKEN} == {p.name for p in all_policies()}


@pytest.mark.parametrize(("rule", "typ", "where", "change"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_resource_fails_the_pack_naming_resource_and_rule(
    stacks: dict[str, RecordingMocks], rule: str, typ: str, where: str, change: Callable[[dict[str, Any]], None]
) -> None:
    name, inventory = _mutate(stacks["prod"], typ, change, where)
    result = evaluate(inventory)
    assert not result.passed
    hits = [v for v in result.violations if v.policy == rule]
    assert hits, result.report()
    assert {v.policy for v in result.violations} == {rule}, result.report()
    text = result.report()
    assert rule in text
    # Resource policies name the broken resource itself; S3 rules name the bucket it belongs to.
    if rule.startswith("s3-"):
        # Companion resources share their bucket's logical name (rlops-prod-artifacts).
        assert [(v.resource_type, v.resource_name) for v in hits] == [("aws:s3/bucket:Bucket", name)], text
    else:
        assert all(v.resource_name == name and name in str(v) for v in hits), text
