"""Helm charts the platform installs, each pinned to an exact version (bump deliberately, one at a time,
after reading the chart's upgrade notes)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chart:
    chart: str
    version: str
    repository: str
    namespace: str


NVIDIA_DEVICE_PLUGIN = Chart(
    "nvidia-device-plugin", "0.17.1", "https://nvidia.github.io/k8s-device-plugin", "nvidia-device-plugin"
)
# 1.5.1 is the first release whose RayJobs take authOptions: Ray 2.60 enforces token auth, and KubeRay then makes the
# token and hands it to the job's submitter.
KUBERAY_OPERATOR = Chart("kuberay-operator", "1.5.1", "https://ray-project.github.io/kuberay-helm/", "kuberay-system")
# One Argo Workflows release everywhere: the images this chart runs, the JSON schema tests/workflows validates the
# rendered templates against, and the Hera models that build them (Hera 7.1's are generated from 4.0.5, a subset
# of 4.1's fields). The chart's own default is v4.1.1; its images are pinned to this exact release instead.
ARGO_WORKFLOWS_VERSION = "v4.1.2"
ARGO_WORKFLOWS = Chart("argo-workflows", "2.0.1", "https://argoproj.github.io/argo-helm", "argo")
ARGO_CD = Chart("argo-cd", "9.4.2", "https://argoproj.github.io/argo-helm", "argocd")
ARGOCD_APPS = Chart("argocd-apps", "2.0.2", "https://argoproj.github.io/argo-helm", "argocd")
ARGO_ROLLOUTS = Chart("argo-rollouts", "2.40.5", "https://argoproj.github.io/argo-helm", "argo-rollouts")
KUBE_PROMETHEUS_STACK = Chart(
    "kube-prometheus-stack", "81.6.9", "https://prometheus-community.github.io/helm-charts", "monitoring"
)
# The traffic router of the inference canary: Argo Rollouts sets exact NGINX canary weights. It needs no AWS API
# access (its Service gets an internal NLB from the cloud provider), so it has no IRSA role at all.
INGRESS_NGINX = Chart("ingress-nginx", "4.12.1", "https://kubernetes.github.io/ingress-nginx", "ingress-nginx")
CLUSTER_AUTOSCALER = Chart("cluster-autoscaler", "9.46.6", "https://kubernetes.github.io/autoscaler", "kube-system")

ALL_CHARTS = (
    NVIDIA_DEVICE_PLUGIN,
    KUBERAY_OPERATOR,
    ARGO_WORKFLOWS,
    ARGO_CD,
    ARGOCD_APPS,
    ARGO_ROLLOUTS,
    KUBE_PROMETHEUS_STACK,
    INGRESS_NGINX,
    CLUSTER_AUTOSCALER,
)
