"""Add-ons under mocks: pinned Helm releases through the cluster's provider, IRSA wiring, the Argo CD root
application, and no custom resources created by Pulumi."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_harness import RecordingMocks, run_with_mocks

from infra import charts
from infra.addons import IRSA_ANNOTATION, WORKFLOWS_CONFIG_MAP, Addons, AddonsArgs, GitOpsSource

ROLES = {r: f"arn:aws:iam::123456789012:role/{r}" for r in ("workflows", "ray", "inference", "cluster-autoscaler")}


@pytest.fixture(scope="module")
def mocks() -> RecordingMocks:
    def program() -> Any:
        return Addons(
            "add",
            AddonsArgs(
                region="us-east-1",
                cluster_name="rlops-prod-eks",
                kubeconfig='{"kind": "Config"}',
                role_arns=ROLES,
                artifact_bucket="rlops-prod-artifacts-x",
                gitops=GitOpsSource("https://github.com/octo/rlops.git", "main", "gitops/envs/dev"),
                tuning_bucket="rlops-prod-tuning-results-x",
                market_data_bucket="rlops-prod-market-data-x",
                registry="123456789012.dkr.ecr.us-east-1.amazonaws.com/rlops-prod",
                inference_token="test-inference-token",
            ),
        ).prometheus_url

    return run_with_mocks(program, stack="prod")


def _values(mocks: RecordingMocks, chart: charts.Chart) -> dict[str, Any]:
    (release,) = [r for r in mocks.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == chart.chart]
    values: dict[str, Any] = release.inputs["values"]
    return values


def test_every_chart_is_installed_once_at_its_pinned_version(mocks: RecordingMocks) -> None:
    releases = {r.inputs["chart"]: r.inputs for r in mocks.of_type("kubernetes:helm.sh/v3:Release")}
    assert set(releases) == {c.chart for c in charts.ALL_CHARTS}
    for chart in charts.ALL_CHARTS:
        release = releases[chart.chart]
        assert release["version"] == chart.version
        assert release["version"].count(".") == 2 and release["version"][0].isdigit()
        assert release["repositoryOpts"] == {"repo": chart.repository}
        assert release["namespace"] == chart.namespace
        assert release["atomic"] is True


def test_releases_go_through_the_clusters_provider(mocks: RecordingMocks) -> None:
    (provider,) = mocks.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == '{"kind": "Config"}'
    kube = [r for r in mocks.resources if r.type.startswith("kubernetes:")]
    assert kube and all("pulumi:providers:kubernetes::add-k8s" in r.provider for r in kube)


def test_argo_workflows_stores_artifacts_in_s3_through_irsa(mocks: RecordingMocks) -> None:
    values = _values(mocks, charts.ARGO_WORKFLOWS)
    s3 = values["artifactRepository"]["s3"]
    assert s3["bucket"] == "rlops-prod-artifacts-x"
    assert s3["useSDKCreds"] is True
    assert "accessKeySecret" not in s3 and values["useStaticCredentials"] is False
    for account in ("workflow", "server"):
        assert values[account]["serviceAccount"]["annotations"] == {IRSA_ANNOTATION: ROLES["workflows"]}


def test_ray_and_inference_service_accounts_carry_their_roles(mocks: RecordingMocks) -> None:
    accounts = {
        (a.inputs["metadata"]["namespace"], a.inputs["metadata"]["name"]): a.inputs["metadata"]["annotations"]
        for a in mocks.of_type("kubernetes:core/v1:ServiceAccount")
    }
    assert accounts == {
        ("ray", "ray-worker"): {IRSA_ANNOTATION: ROLES["ray"]},
        ("inference", "inference"): {IRSA_ANNOTATION: ROLES["inference"]},
    }


def test_autoscaler_and_device_plugin_settings(mocks: RecordingMocks) -> None:
    autoscaler = _values(mocks, charts.CLUSTER_AUTOSCALER)
    assert autoscaler["autoDiscovery"] == {"clusterName": "rlops-prod-eks"}
    assert autoscaler["rbac"]["serviceAccount"]["annotations"] == {IRSA_ANNOTATION: ROLES["cluster-autoscaler"]}
    plugin = _values(mocks, charts.NVIDIA_DEVICE_PLUGIN)
    assert plugin["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_prometheus_scrapes_every_monitor_and_grafana_stays_off(mocks: RecordingMocks) -> None:
    values = _values(mocks, charts.KUBE_PROMETHEUS_STACK)
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is False
    assert spec["podMonitorSelectorNilUsesHelmValues"] is False
    assert values["grafana"] == {"enabled": False}


def test_root_application_points_at_gitops_and_self_heals(mocks: RecordingMocks) -> None:
    root = _values(mocks, charts.ARGOCD_APPS)["applications"]["rlops-root"]
    assert root["source"] == {
        "repoURL": "https://github.com/octo/rlops.git",
        "targetRevision": "main",
        "path": "gitops/envs/dev",
    }
    assert root["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert root["destination"] == {"server": "https://kubernetes.default.svc", "namespace": "argocd"}


def test_pulumi_creates_no_custom_resources(mocks: RecordingMocks) -> None:
    kinds = {r.type for r in mocks.resources if r.type.startswith("kubernetes:")}
    assert kinds == {
        "kubernetes:helm.sh/v3:Release",
        "kubernetes:core/v1:Namespace",
        "kubernetes:core/v1:ServiceAccount",
        "kubernetes:core/v1:ConfigMap",
        "kubernetes:core/v1:Secret",
        "kubernetes:rbac.authorization.k8s.io/v1:Role",
        "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
    }
    assert mocks.results == ["http://kube-prometheus-stack-prometheus.monitoring.svc:9090"]


def test_argo_workflows_runs_the_release_the_templates_are_validated_against(mocks: RecordingMocks) -> None:
    assert _values(mocks, charts.ARGO_WORKFLOWS)["images"] == {"tag": charts.ARGO_WORKFLOWS_VERSION}


def test_workflow_templates_find_this_clusters_registry_and_buckets(mocks: RecordingMocks) -> None:
    (settings,) = mocks.of_type("kubernetes:core/v1:ConfigMap")
    assert settings.inputs["metadata"] == {"name": WORKFLOWS_CONFIG_MAP, "namespace": "argo"}
    assert settings.inputs["data"] == {
        "registry": "123456789012.dkr.ecr.us-east-1.amazonaws.com/rlops-prod",
        "output-prefix": "s3://rlops-prod-artifacts-x/runs",
        "tuning-prefix": "s3://rlops-prod-tuning-results-x/runs",
        "nightly-dataset": "s3://rlops-prod-market-data-x/store",
    }


def test_workflow_pods_may_create_and_watch_rayjobs_in_the_ray_namespace_only(mocks: RecordingMocks) -> None:
    (role,) = mocks.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
    (binding,) = mocks.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
    assert role.inputs["metadata"]["namespace"] == "ray"
    assert role.inputs["rules"] == [
        {"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": ["create", "get", "list", "watch"]}
    ]
    assert binding.inputs["metadata"]["namespace"] == "ray"
    assert binding.inputs["roleRef"]["kind"] == "Role"
    assert binding.inputs["subjects"] == [{"kind": "ServiceAccount", "name": "argo-workflow", "namespace": "argo"}]


def test_the_inference_token_secret_comes_from_the_stack_secret(mocks: RecordingMocks) -> None:
    (secret,) = [r for r in mocks.resources if r.type == "kubernetes:core/v1:Secret"]
    assert secret.inputs["metadata"] == {"name": "inference-token", "namespace": "inference"}
    # Sent to the engine as a secret (Pulumi's secret signature), so state and previews never show it.
    wrapped = secret.inputs["stringData"]
    assert wrapped["4dabf18193072939515e22adb298388d"] == "1b47061264138c4ac30d75fd1eb44270"
    assert wrapped["value"] == {"token": "test-inference-token"}


def test_the_ingress_controller_is_internal_and_has_no_aws_role(mocks: RecordingMocks) -> None:
    values = _values(mocks, charts.INGRESS_NGINX)["controller"]
    assert values["ingressClassResource"]["name"] == "nginx"
    annotations = values["service"]["annotations"]
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"
    assert "serviceAccount" not in values  # no IRSA: it never calls an AWS API
