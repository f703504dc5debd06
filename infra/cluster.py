"""Cluster: EKS with a private API endpoint, KMS-encrypted secrets, control-plane logs, IRSA, and managed
node groups (a system CPU group, GPU groups that scale from zero)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks

from infra import documents
from infra.config import NodeGroupConfig
from infra.kms import encryption_key
from infra.tagging import tagged

CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
GPU_TAINT_KEY = "nvidia.com/gpu"
NODE_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
)
SYSTEM_AMI = "AL2023_x86_64_STANDARD"
GPU_AMI = "AL2023_x86_64_NVIDIA"


@dataclass(frozen=True)
class ClusterArgs:
    cluster_name: str
    kubernetes_version: str
    vpc_id: pulumi.Input[str]
    private_subnet_ids: Sequence[pulumi.Input[str]]
    public_subnet_ids: Sequence[pulumi.Input[str]]
    public_access_cidrs: Sequence[str]
    system_nodes: NodeGroupConfig
    gpu_node_groups: Sequence[NodeGroupConfig]
    deletion_protection: bool
    tags: Mapping[str, str]


def gpu_labels(group: NodeGroupConfig) -> dict[str, str]:
    # nvidia.com/gpu.present is what the NVIDIA device plugin chart's default affinity selects on.
    return {
        "nvidia.com/gpu.present": "true",
        "rlops.io/node-pool": group.name,
        "rlops.io/capacity-type": group.capacity_type.lower(),
    }


def autoscaler_template_tags(cluster_name: str, group: NodeGroupConfig) -> dict[str, str]:
    """Tags that tell the cluster autoscaler what a node of an empty group would look like, so it can
    scale a GPU group up from zero for a pending pod that tolerates the taint."""
    template = "k8s.io/cluster-autoscaler/node-template"
    tags = {f"{template}/label/{key}": value for key, value in gpu_labels(group).items()}
    tags[f"{template}/taint/{GPU_TAINT_KEY}"] = "true:NoSchedule"
    tags["k8s.io/cluster-autoscaler/enabled"] = "true"
    tags[f"k8s.io/cluster-autoscaler/{cluster_name}"] = "owned"
    return tags


class Cluster(pulumi.ComponentResource):
    cluster_name: str
    kubeconfig_json: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_provider_url: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rlops:infra:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        secrets_key = encryption_key(
            f"{name}-secrets", f"{args.cluster_name}-secrets", "EKS secrets envelope encryption", args.tags, self
        )
        node_role = aws.iam.Role(
            f"{name}-nodes",
            assume_role_policy=documents.to_json(documents.service_trust("ec2.amazonaws.com")),
            tags=tagged(args.tags, f"{args.cluster_name}-nodes"),
            opts=child,
        )
        for arn in NODE_POLICIES:
            aws.iam.RolePolicyAttachment(
                f"{name}-nodes-{arn.rsplit('/', 1)[-1]}", role=node_role.name, policy_arn=arn, opts=child
            )

        public = bool(args.public_access_cidrs)
        self.cluster = eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=args.kubernetes_version,
            vpc_id=args.vpc_id,
            private_subnet_ids=list(args.private_subnet_ids),
            public_subnet_ids=list(args.public_subnet_ids),
            node_associate_public_ip_address=False,
            endpoint_private_access=True,
            endpoint_public_access=public,
            public_access_cidrs=list(args.public_access_cidrs) if public else None,
            encryption_config_key_arn=secrets_key.arn,
            enabled_cluster_log_types=list(CONTROL_PLANE_LOG_TYPES),
            create_oidc_provider=True,
            authentication_mode=eks.AuthenticationMode.API,
            skip_default_node_group=True,
            deletion_protection=args.deletion_protection,
            tags=tagged(args.tags, args.cluster_name),
            opts=child,
        )

        self._node_group(name, args, args.system_nodes, node_role, gpu=False)
        for group in args.gpu_node_groups:
            self._node_group(name, args, group, node_role, gpu=True)

        self.cluster_name = args.cluster_name
        self.kubeconfig_json = self.cluster.kubeconfig_json
        self.oidc_provider_arn = self.cluster.oidc_provider_arn
        self.oidc_provider_url = self.cluster.oidc_provider_url
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "oidc_provider_arn": self.oidc_provider_arn,
                "secrets_key_arn": secrets_key.arn,
            }
        )

    def _node_group(
        self, name: str, args: ClusterArgs, group: NodeGroupConfig, role: aws.iam.Role, *, gpu: bool
    ) -> eks.ManagedNodeGroup:
        labels = gpu_labels(group) if gpu else {"rlops.io/node-pool": group.name}
        extra_tags = autoscaler_template_tags(args.cluster_name, group) if gpu else {}
        return eks.ManagedNodeGroup(
            f"{name}-{group.name}",
            cluster=self.cluster,
            node_role_arn=role.arn,
            subnet_ids=list(args.private_subnet_ids),
            ami_type=GPU_AMI if gpu else SYSTEM_AMI,
            instance_types=list(group.instance_types),
            capacity_type=group.capacity_type,
            disk_size=group.disk_size_gib,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=group.min_size, max_size=group.max_size, desired_size=group.desired_size
            ),
            # The autoscaler owns desired size once running; a later `pulumi up` must not reset it.
            ignore_scaling_changes=True,
            labels=labels,
            taints=[aws.eks.NodeGroupTaintArgs(key=GPU_TAINT_KEY, value="true", effect="NO_SCHEDULE")] if gpu else None,
            enable_imd_sv2=True,
            tags=tagged(args.tags, f"{args.cluster_name}-{group.name}", **extra_tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
