"""Platform add-ons as Helm releases with pinned chart versions.

Only charts and core kinds (namespaces, service accounts) are created here. Custom resources (Workflows,
RayClusters, Rollouts, AnalysisTemplates) are left to Argo CD through the root application: a CR created
by Pulumi next to the chart that installs its CRD fails at preview, before the CRD exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import charts
from infra.charts import Chart
from infra.cluster import GPU_TAINT_KEY
from infra.identity import AUTOSCALER_ACCOUNT, WORKLOADS, ServiceAccount

IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
# What the rendered workflows (workflows/common.py) read their cluster-specific parameters from.
WORKFLOWS_CONFIG_MAP = "rlops-workflows"
PROMETHEUS_URL = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
SYSTEM_POOL = {"rlops.io/node-pool": "system"}
INGRESS_CLASS = "nginx"
INTERNAL_NLB = {
    "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
}
# The Secret the inference Rollout (gitops/inference/base/rollout.yaml) reads RLOPS_SERVE_AUTH_TOKEN from.
INFERENCE_TOKEN_SECRET = "inference-token"  # noqa: S105  (a Secret's name, not its value)


@dataclass(frozen=True)
class GitOpsSource:
    repo_url: str
    revision: str
    path: str


@dataclass(frozen=True)
class AddonsArgs:
    region: str
    cluster_name: str
    kubeconfig: pulumi.Input[str]
    role_arns: Mapping[str, pulumi.Input[str]]
    artifact_bucket: pulumi.Input[str]
    gitops: GitOpsSource
    tuning_bucket: pulumi.Input[str]
    market_data_bucket: pulumi.Input[str]
    registry: pulumi.Input[str]  # the repositories' common prefix: <account>.dkr.ecr.<region>.amazonaws.com/<prefix>
    inference_token: pulumi.Input[str]  # the bearer token /v1/* of the inference service requires (a Pulumi secret)


def _account(role: str) -> Sequence[ServiceAccount]:
    for workload in WORKLOADS:
        if workload.role == role:
            return workload.service_accounts
    raise KeyError(f"no workload named {role}")


class Addons(pulumi.ComponentResource):
    prometheus_url: str

    def __init__(self, name: str, args: AddonsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rlops:infra:Addons", name, None, opts)
        self._provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=args.kubeconfig,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._args = args
        self._release(
            name,
            charts.CLUSTER_AUTOSCALER,
            {
                "autoDiscovery": {"clusterName": args.cluster_name},
                "awsRegion": args.region,
                "rbac": {
                    "serviceAccount": {
                        "name": AUTOSCALER_ACCOUNT.name,
                        "annotations": {IRSA_ANNOTATION: args.role_arns["cluster-autoscaler"]},
                    }
                },
                "extraArgs": {"balance-similar-node-groups": True, "expander": "least-waste"},
                "nodeSelector": SYSTEM_POOL,
            },
        )
        self._release(
            name,
            charts.NVIDIA_DEVICE_PLUGIN,
            {
                "nodeSelector": {"nvidia.com/gpu.present": "true"},
                "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
            },
        )
        self._release(name, charts.KUBERAY_OPERATOR, {"nodeSelector": SYSTEM_POOL})
        ray_namespaces = self._workload_accounts(name, "ray")
        inference_namespaces = self._workload_accounts(name, "inference")
        self._inference_token(name, args, inference_namespaces)
        workflows_role = args.role_arns["workflows"]
        executor, server = _account("workflows")
        argo = self._release(
            name,
            charts.ARGO_WORKFLOWS,
            {
                "images": {"tag": charts.ARGO_WORKFLOWS_VERSION},
                "controller": {"workflowNamespaces": [executor.namespace], "nodeSelector": SYSTEM_POOL},
                "workflow": {
                    "serviceAccount": {
                        "create": True,
                        "name": executor.name,
                        "annotations": {IRSA_ANNOTATION: workflows_role},
                    },
                    "rbac": {"create": True},
                },
                "server": {
                    "serviceAccount": {
                        "create": True,
                        "name": server.name,
                        "annotations": {IRSA_ANNOTATION: workflows_role},
                    },
                    "nodeSelector": SYSTEM_POOL,
                },
                # Credentials come from IRSA (the pod's web identity), never from a stored access key.
                "useStaticCredentials": False,
                "artifactRepository": {
                    "archiveLogs": True,
                    "s3": {
                        "bucket": args.artifact_bucket,
                        "endpoint": "s3.amazonaws.com",
                        "region": args.region,
                        "insecure": False,
                        "useSDKCreds": True,
                        "encryptionOptions": {"enableEncryption": True},
                    },
                },
            },
        )
        self._workflow_settings(name, args, executor.namespace, argo)
        self._rayjob_access(name, executor, ray_namespaces)
        argocd = self._release(
            name,
            charts.ARGO_CD,
            {
                "dex": {"enabled": False},
                "configs": {"params": {"server.insecure": False}},
                "global": {"nodeSelector": SYSTEM_POOL},
            },
        )
        self._release(
            name,
            charts.ARGOCD_APPS,
            {"applications": {"rlops-root": self._root_application(args)}},
            depends_on=[argocd],
        )
        self._release(
            name,
            charts.ARGO_ROLLOUTS,
            {
                "controller": {"metrics": {"enabled": True}, "nodeSelector": SYSTEM_POOL},
                "dashboard": {"enabled": False},
            },
        )
        self._release(
            name,
            charts.KUBE_PROMETHEUS_STACK,
            {
                # Pick up every ServiceMonitor, not only those labelled for this release.
                "prometheus": {
                    "prometheusSpec": {
                        "serviceMonitorSelectorNilUsesHelmValues": False,
                        "podMonitorSelectorNilUsesHelmValues": False,
                        "retention": "15d",
                        "nodeSelector": SYSTEM_POOL,
                    }
                },
                # The chart's Grafana ships with a well-known admin password; canary analysis needs only
                # Prometheus, and dashboards can arrive through Argo CD with a managed secret.
                "grafana": {"enabled": False},
            },
        )
        self._release(
            name,
            charts.INGRESS_NGINX,
            {
                "controller": {
                    "ingressClassResource": {"name": INGRESS_CLASS, "default": False},
                    "nodeSelector": SYSTEM_POOL,
                    "metrics": {"enabled": True},
                    # Nothing open by default: an internal NLB, reachable from the VPC (and its peers) only.
                    "service": {"annotations": INTERNAL_NLB},
                },
            },
        )
        self.prometheus_url = PROMETHEUS_URL
        self.register_outputs({"prometheus_url": self.prometheus_url})

    def _release(
        self,
        name: str,
        chart: Chart,
        values: Mapping[str, Any],
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> k8s.helm.v3.Release:
        return k8s.helm.v3.Release(
            f"{name}-{chart.chart}",
            k8s.helm.v3.ReleaseArgs(
                name=chart.chart,
                chart=chart.chart,
                version=chart.version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository),
                namespace=chart.namespace,
                create_namespace=True,
                atomic=True,
                cleanup_on_fail=True,
                timeout=900,
                values=dict(values),
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=self._provider, depends_on=list(depends_on)),
        )

    def _workflow_settings(self, name: str, args: AddonsArgs, namespace: str, argo: pulumi.Resource) -> None:
        """This cluster's registry and buckets, where the workflow templates look them up (Argo CD applies the
        templates, which stay the same on every cluster)."""
        k8s.core.v1.ConfigMap(
            f"{name}-workflows-settings",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=WORKFLOWS_CONFIG_MAP, namespace=namespace),
            data={
                "registry": args.registry,
                "output-prefix": pulumi.Output.concat("s3://", args.artifact_bucket, "/runs"),
                "tuning-prefix": pulumi.Output.concat("s3://", args.tuning_bucket, "/runs"),
                # The store that `rlops data ingest ... --to s3://<market-data>/store` refreshes.
                "nightly-dataset": pulumi.Output.concat("s3://", args.market_data_bucket, "/store"),
            },
            opts=pulumi.ResourceOptions(parent=self, provider=self._provider, depends_on=[argo]),
        )

    def _rayjob_access(
        self, name: str, executor: ServiceAccount, ray_namespaces: Mapping[str, pulumi.Resource]
    ) -> None:
        """The research workflow's tune step creates a RayJob in the ray namespace and watches its status:
        exactly that, nothing else there."""
        opts = pulumi.ResourceOptions(parent=self, provider=self._provider, depends_on=list(ray_namespaces.values()))
        (namespace,) = ray_namespaces
        role = k8s.rbac.v1.Role(
            f"{name}-workflows-rayjobs",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="argo-workflows-rayjobs", namespace=namespace),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=["ray.io"], resources=["rayjobs"], verbs=["create", "get", "list", "watch"]
                )
            ],
            opts=opts,
        )
        k8s.rbac.v1.RoleBinding(
            f"{name}-workflows-rayjobs",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="argo-workflows-rayjobs", namespace=namespace),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name
            ),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=executor.name, namespace=executor.namespace)],
            opts=opts,
        )

    def _inference_token(self, name: str, args: AddonsArgs, namespaces: Mapping[str, pulumi.Resource]) -> None:
        """The service's bearer token from the stack's secret config: in the Secret, never in git or the image."""
        (namespace,) = namespaces
        k8s.core.v1.Secret(
            f"{name}-inference-token",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=INFERENCE_TOKEN_SECRET, namespace=namespace),
            type="Opaque",
            string_data={"token": pulumi.Output.secret(args.inference_token)},
            opts=pulumi.ResourceOptions(parent=self, provider=self._provider, depends_on=list(namespaces.values())),
        )

    def _workload_accounts(self, name: str, role: str) -> dict[str, pulumi.Resource]:
        """Namespace and service account for a workload whose pods Argo CD deploys later."""
        accounts = _account(role)
        namespaces = {a.namespace for a in accounts}
        opts = pulumi.ResourceOptions(parent=self, provider=self._provider)
        created = {
            ns: k8s.core.v1.Namespace(
                f"{name}-ns-{ns}-{role}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=ns, labels={"rlops.io/workload": role}),
                opts=opts,
            )
            for ns in sorted(namespaces)
        }
        for account in accounts:
            k8s.core.v1.ServiceAccount(
                f"{name}-sa-{account.namespace}-{account.name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=account.name,
                    namespace=account.namespace,
                    annotations={IRSA_ANNOTATION: self._args.role_arns[role]},
                ),
                opts=pulumi.ResourceOptions(
                    parent=self, provider=self._provider, depends_on=[created[account.namespace]]
                ),
            )
        return dict(created)

    @staticmethod
    def _root_application(args: AddonsArgs) -> dict[str, Any]:
        return {
            "namespace": charts.ARGO_CD.namespace,
            "project": "default",
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
            "source": {
                "repoURL": args.gitops.repo_url,
                "targetRevision": args.gitops.revision,
                # gitops/envs/<environment>: a kustomization of the project and its applications (app of apps).
                "path": args.gitops.path,
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": charts.ARGO_CD.namespace},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": ["CreateNamespace=true"],
            },
        }
