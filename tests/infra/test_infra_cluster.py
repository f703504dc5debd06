"""Cluster component under mocks. pulumi-eks builds its children in a provider plugin, so these tests check
what our code hands to eks:index:Cluster / ManagedNodeGroup and use faked outputs for the rest."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_harness import OIDC_ISSUER, RecordingMocks, run_with_mocks

from infra.cluster import CONTROL_PLANE_LOG_TYPES, GPU_AMI, Cluster, ClusterArgs
from infra.config import NodeGroupConfig

TAGS = {"project": "rlops", "environment": "staging", "owner": "o", "cost-center": "c"}
SYSTEM = NodeGroupConfig("system", ("m7i.large",), "ON_DEMAND", 2, 4, 2, 50)
GPU_SPOT = NodeGroupConfig("gpu-spot", ("g5.xlarge", "g6.xlarge"), "SPOT", 0, 3, 0, 200)
GPU_ON_DEMAND = NodeGroupConfig("gpu-ondemand", ("p4d.24xlarge",), "ON_DEMAND", 0, 1, 0, 500)


def _cluster(public_cidrs: tuple[str, ...] = ()) -> RecordingMocks:
    def program() -> Any:
        cluster = Cluster(
            "c",
            ClusterArgs(
                cluster_name="rlops-staging-eks",
                kubernetes_version="1.33",
                vpc_id="vpc-1",
                private_subnet_ids=["subnet-a", "subnet-b"],
                public_subnet_ids=["subnet-pa", "subnet-pb"],
                public_access_cidrs=public_cidrs,
                system_nodes=SYSTEM,
                gpu_node_groups=(GPU_SPOT, GPU_ON_DEMAND),
                deletion_protection=False,
                tags=TAGS,
            ),
        )
        return cluster.oidc_provider_url

    return run_with_mocks(program, stack="staging")


def test_private_endpoint_kms_secrets_logging_and_irsa() -> None:
    mocks = _cluster()
    (eks,) = mocks.of_type("eks:index:Cluster")
    (key,) = mocks.of_type("aws:kms/key:Key")
    assert eks.inputs["endpointPrivateAccess"] is True
    assert eks.inputs["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in eks.inputs
    assert eks.inputs["encryptionConfigKeyArn"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True
    assert eks.inputs["enabledClusterLogTypes"] == list(CONTROL_PLANE_LOG_TYPES)
    assert eks.inputs["createOidcProvider"] is True
    assert eks.inputs["skipDefaultNodeGroup"] is True
    assert eks.inputs["nodeAssociatePublicIpAddress"] is False
    assert eks.inputs["privateSubnetIds"] == ["subnet-a", "subnet-b"]
    # The faked issuer flows out of the component for the IRSA roles to use.
    assert mocks.results == [OIDC_ISSUER.removeprefix("https://")]


def test_public_endpoint_only_from_configured_cidrs() -> None:
    (eks,) = _cluster(("203.0.113.0/24",)).of_type("eks:index:Cluster")
    assert eks.inputs["endpointPublicAccess"] is True
    assert eks.inputs["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_gpu_groups_are_tainted_labelled_nvidia_and_scale_from_zero() -> None:
    mocks = _cluster()
    groups = {g.name: g.inputs for g in mocks.of_type("eks:index:ManagedNodeGroup")}
    assert set(groups) == {"c-system", "c-gpu-spot", "c-gpu-ondemand"}
    for name, config in (("c-gpu-spot", GPU_SPOT), ("c-gpu-ondemand", GPU_ON_DEMAND)):
        group = groups[name]
        assert group["amiType"] == GPU_AMI
        assert group["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
        assert group["labels"]["nvidia.com/gpu.present"] == "true"
        assert group["capacityType"] == config.capacity_type
        assert group["instanceTypes"] == list(config.instance_types)
        assert group["scalingConfig"] == {"minSize": 0, "desiredSize": 0, "maxSize": config.max_size}
        assert group["ignoreScalingChanges"] is True
        assert group["tags"]["k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu"] == "true:NoSchedule"
        assert group["tags"]["k8s.io/cluster-autoscaler/rlops-staging-eks"] == "owned"
        assert group["subnetIds"] == ["subnet-a", "subnet-b"]


def test_system_group_takes_no_gpu_taint_and_nodes_use_imdsv2() -> None:
    mocks = _cluster()
    system = mocks.named("eks:index:ManagedNodeGroup", "c-system").inputs
    assert "taints" not in system
    assert system["amiType"] == "AL2023_x86_64_STANDARD"
    assert system["scalingConfig"] == {"minSize": 2, "desiredSize": 2, "maxSize": 4}
    assert all(g.inputs["enableIMDSv2"] is True for g in mocks.of_type("eks:index:ManagedNodeGroup"))
    (role,) = mocks.of_type("aws:iam/role:Role")
    assert all(g.inputs["nodeRoleArn"] == role.outputs["arn"] for g in mocks.of_type("eks:index:ManagedNodeGroup"))
    attached = {
        a.inputs["policyArn"].rsplit("/", 1)[-1]
        for a in mocks.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    }
    assert attached == {"AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly"}


@pytest.mark.parametrize(
    "typ", ["eks:index:Cluster", "eks:index:ManagedNodeGroup", "aws:kms/key:Key", "aws:iam/role:Role"]
)
def test_taggable_children_carry_the_required_tags(typ: str) -> None:
    for resource in _cluster().of_type(typ):
        assert {k: resource.inputs["tags"][k] for k in TAGS} == TAGS
