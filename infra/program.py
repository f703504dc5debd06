"""The whole environment: wires the components together and exports what users and CI need."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.addons import Addons, AddonsArgs, GitOpsSource
from infra.cluster import Cluster, ClusterArgs
from infra.config import StackConfig, load_stack_config
from infra.identity import Identity, IdentityArgs
from infra.network import Network, NetworkArgs
from infra.registry import IMAGES, Registry, RegistryArgs
from infra.storage import Storage, StorageArgs


@dataclass(frozen=True)
class Environment:
    network: Network
    cluster: Cluster
    registry: Registry
    storage: Storage
    identity: Identity
    addons: Addons | None


def build(config: StackConfig) -> Environment:
    prefix = config.name_prefix
    tags = config.tags
    # Default tags reach every taggable resource this provider manages, including the ones pulumi-eks
    # creates inside its plugin, which the program cannot tag one by one.
    provider = aws.Provider(f"{prefix}-aws", region=config.region, default_tags=aws.ProviderDefaultTagsArgs(tags=tags))
    aws_opts = pulumi.ResourceOptions(providers=[provider])
    account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=provider)).account_id

    network = Network(
        prefix,
        NetworkArgs(
            name_prefix=prefix,
            region=config.region,
            vpc_cidr=config.vpc_cidr,
            availability_zones=config.availability_zones,
            nat_gateway_per_az=config.nat_gateway_per_az,
            flow_log_retention_days=config.log_retention_days,
            account_id=account_id,
            tags=tags,
        ),
        opts=aws_opts,
    )
    cluster = Cluster(
        prefix,
        ClusterArgs(
            cluster_name=config.cluster_name,
            kubernetes_version=config.kubernetes_version,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
            public_subnet_ids=network.public_subnet_ids,
            public_access_cidrs=config.public_access_cidrs,
            system_nodes=config.system_nodes,
            gpu_node_groups=config.gpu_node_groups,
            deletion_protection=config.environment == "prod",
            tags=tags,
        ),
        opts=aws_opts,
    )
    registry = Registry(prefix, RegistryArgs(name_prefix=prefix, tags=tags), opts=aws_opts)
    storage = Storage(
        prefix,
        StorageArgs(
            name_prefix=prefix,
            account_id=account_id,
            tuning_results_retention_days=config.tuning_results_retention_days,
            force_destroy=config.force_destroy_buckets,
            tags=tags,
        ),
        opts=aws_opts,
    )
    identity = Identity(
        prefix,
        IdentityArgs(
            name_prefix=prefix,
            cluster_name=config.cluster_name,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_provider_url=cluster.oidc_provider_url,
            bucket_arns=storage.bucket_arns,
            repository_arns=registry.repository_arns,
            storage_key_arn=storage.key_arn,
            github_subjects=config.github.subjects,
            github_push_images=IMAGES,
            existing_github_provider_arn=config.github.existing_oidc_provider_arn,
            tags=tags,
        ),
        opts=aws_opts,
    )
    addons = None
    if config.deploy_addons:
        addons = Addons(
            prefix,
            AddonsArgs(
                region=config.region,
                cluster_name=config.cluster_name,
                kubeconfig=cluster.kubeconfig_json,
                role_arns=identity.role_arns,
                artifact_bucket=storage.bucket_names["artifacts"],
                gitops=GitOpsSource(config.gitops_repo_url, config.gitops_revision, config.gitops_path),
                tuning_bucket=storage.bucket_names["tuning-results"],
                market_data_bucket=storage.bucket_names["market-data"],
                # Every image lives under one prefix (<prefix>/<image>): the workflows add the image name.
                registry=registry.repository_urls["training"].apply(lambda url: url.rsplit("/", 1)[0]),
                # `pulumi config set --secret rlops:inferenceToken "$(openssl rand -hex 32)"` once per stack.
                inference_token=pulumi.Config("rlops").require_secret("inferenceToken"),
            ),
        )
    return Environment(network, cluster, registry, storage, identity, addons)


def export(env: Environment) -> None:
    # The kubeconfig grants cluster access to whoever can read stack outputs: keep it encrypted.
    pulumi.export("kubeconfig", pulumi.Output.secret(env.cluster.kubeconfig_json))
    pulumi.export("cluster_name", env.cluster.cluster_name)
    pulumi.export("vpc_id", env.network.vpc_id)
    pulumi.export("registry_urls", env.registry.repository_urls)
    pulumi.export("bucket_names", env.storage.bucket_names)
    pulumi.export("role_arns", env.identity.role_arns)
    if env.addons is not None:
        pulumi.export("prometheus_url", env.addons.prometheus_url)


def main() -> None:
    export(build(load_stack_config()))
