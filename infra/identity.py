"""Identity: IRSA roles for the workloads (each limited to its own buckets and repositories), the cluster
autoscaler's role, and the GitHub Actions OIDC provider and role that pushes images from protected refs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import documents
from infra.tagging import tagged

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
S3_READ = ("s3:GetObject", "s3:GetObjectVersion")
S3_WRITE = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
S3_LIST = ("s3:ListBucket", "s3:GetBucketLocation")
ECR_PULL = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
ECR_PUSH = (
    *ECR_PULL,
    "ecr:CompleteLayerUpload",
    "ecr:DescribeImages",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
)
# GetAuthorizationToken has no resource-level permissions: AWS only accepts "*" for it.
ECR_LOGIN_ACTION = "ecr:GetAuthorizationToken"


@dataclass(frozen=True)
class ServiceAccount:
    namespace: str
    name: str

    @property
    def subject(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"


@dataclass(frozen=True)
class WorkloadAccess:
    """What one workload may touch: buckets it reads, buckets it writes, images it pulls."""

    role: str
    service_accounts: Sequence[ServiceAccount]
    read_buckets: Sequence[str] = ()
    write_buckets: Sequence[str] = ()
    pull_images: Sequence[str] = ()


WORKLOADS = (
    WorkloadAccess(
        role="workflows",
        # Workflow pods write artifacts; the Argo server reads them back for the UI.
        service_accounts=(ServiceAccount("argo", "argo-workflow"), ServiceAccount("argo", "argo-workflows-server")),
        read_buckets=("market-data",),
        write_buckets=("artifacts", "tuning-results"),
        pull_images=("training", "tuning", "backtesting"),
    ),
    WorkloadAccess(
        role="ray",
        service_accounts=(ServiceAccount("ray", "ray-worker"),),
        read_buckets=("market-data", "artifacts"),
        write_buckets=("tuning-results",),
        pull_images=("tuning", "training"),
    ),
    WorkloadAccess(
        role="inference",
        service_accounts=(ServiceAccount("inference", "inference"),),
        read_buckets=("artifacts",),
        pull_images=("inference",),
    ),
)
AUTOSCALER_ACCOUNT = ServiceAccount("kube-system", "cluster-autoscaler")


def workload_policy(
    access: WorkloadAccess,
    bucket_arns: Mapping[str, str],
    repository_arns: Mapping[str, str],
    key_arn: str,
) -> documents.Document:
    """Least privilege for one workload: exactly its buckets (and their objects) and repositories."""
    unknown = (set(access.read_buckets) | set(access.write_buckets)) - set(bucket_arns)
    unknown_images = set(access.pull_images) - set(repository_arns)
    if unknown or unknown_images:
        raise ValueError(f"workload {access.role}: no bucket {sorted(unknown)} / repository {sorted(unknown_images)}")
    every_bucket = [*access.read_buckets, *access.write_buckets]
    statements = [
        documents.allow("ListOwnBuckets", S3_LIST, [bucket_arns[b] for b in every_bucket]),
        documents.allow("ReadObjects", S3_READ, [f"{bucket_arns[b]}/*" for b in every_bucket]),
        documents.allow(
            "UseDataKey",
            ["kms:Decrypt", "kms:DescribeKey"] + (["kms:GenerateDataKey"] if access.write_buckets else []),
            [key_arn],
        ),
    ]
    if access.write_buckets:
        statements.append(
            documents.allow("WriteObjects", S3_WRITE, [f"{bucket_arns[b]}/*" for b in access.write_buckets])
        )
    if access.pull_images:
        statements.append(documents.allow("PullImages", ECR_PULL, [repository_arns[i] for i in access.pull_images]))
        statements.append(documents.allow("RegistryLogin", [ECR_LOGIN_ACTION], ["*"]))
    return documents.document(*statements)


def autoscaler_policy(cluster_name: str) -> documents.Document:
    """Describe calls cannot be scoped; resizing is limited to groups tagged as owned by this cluster."""
    return documents.document(
        documents.allow(
            "Describe",
            [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeTags",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
                "eks:DescribeNodegroup",
            ],
            ["*"],
        ),
        documents.allow(
            "ResizeOwnGroups",
            ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
            ["*"],
            condition={"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}},
        ),
    )


@dataclass(frozen=True)
class IdentityArgs:
    name_prefix: str
    cluster_name: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_provider_url: pulumi.Input[str]
    bucket_arns: Mapping[str, pulumi.Input[str]]
    repository_arns: Mapping[str, pulumi.Input[str]]
    storage_key_arn: pulumi.Input[str]
    github_subjects: Sequence[str]
    github_push_images: Sequence[str]
    existing_github_provider_arn: str | None
    tags: Mapping[str, str]
    workloads: Sequence[WorkloadAccess] = WORKLOADS


class Identity(pulumi.ComponentResource):
    role_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rlops:infra:Identity", name, None, opts)
        self.role_arns = {}
        buckets = pulumi.Output.all(**args.bucket_arns)
        repos = pulumi.Output.all(**args.repository_arns)
        for access in args.workloads:

            def render(parts: list[Any], a: WorkloadAccess = access) -> str:
                return documents.to_json(workload_policy(a, parts[0], parts[1], parts[2]))

            policy = pulumi.Output.all(buckets, repos, args.storage_key_arn).apply(render)
            self.role_arns[access.role] = self._irsa_role(name, args, access.role, access.service_accounts, policy)

        self.role_arns["cluster-autoscaler"] = self._irsa_role(
            name,
            args,
            "cluster-autoscaler",
            [AUTOSCALER_ACCOUNT],
            documents.to_json(autoscaler_policy(args.cluster_name)),
        )
        self.role_arns["github-actions"] = self._github_role(name, args)
        self.register_outputs({"role_arns": self.role_arns})

    def _irsa_role(
        self,
        name: str,
        args: IdentityArgs,
        role: str,
        accounts: Sequence[ServiceAccount],
        policy: pulumi.Input[str],
    ) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        trust = pulumi.Output.all(args.oidc_provider_arn, args.oidc_provider_url).apply(
            lambda parts: documents.to_json(
                documents.web_identity_trust(parts[0], parts[1], [a.subject for a in accounts])
            )
        )
        iam_role = aws.iam.Role(
            f"{name}-{role}",
            assume_role_policy=trust,
            description=f"IRSA for {', '.join(a.subject for a in accounts)}",
            tags=tagged(args.tags, f"{args.name_prefix}-{role}"),
            opts=child,
        )
        aws.iam.RolePolicy(f"{name}-{role}", role=iam_role.id, policy=policy, opts=child)
        return iam_role.arn

    def _github_role(self, name: str, args: IdentityArgs) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        if args.existing_github_provider_arn is not None:
            provider_arn: pulumi.Output[str] = pulumi.Output.from_input(args.existing_github_provider_arn)
        else:
            provider = aws.iam.OpenIdConnectProvider(
                f"{name}-github",
                url=GITHUB_ISSUER,
                client_id_lists=[documents.STS_AUDIENCE],
                tags=tagged(args.tags, f"{args.name_prefix}-github-oidc"),
                opts=child,
            )
            provider_arn = provider.arn
        role = aws.iam.Role(
            f"{name}-github-actions",
            assume_role_policy=provider_arn.apply(
                lambda arn: documents.to_json(documents.web_identity_trust(arn, GITHUB_ISSUER, args.github_subjects))
            ),
            description="GitHub Actions on protected refs: push images",
            max_session_duration=3600,
            tags=tagged(args.tags, f"{args.name_prefix}-github-actions"),
            opts=child,
        )
        push = pulumi.Output.all(*[args.repository_arns[i] for i in args.github_push_images]).apply(
            lambda arns: documents.to_json(
                documents.document(
                    documents.allow("PushImages", ECR_PUSH, list(arns)),
                    documents.allow("RegistryLogin", [ECR_LOGIN_ACTION], ["*"]),
                )
            )
        )
        aws.iam.RolePolicy(f"{name}-github-actions", role=role.id, policy=push, opts=child)
        return role.arn
