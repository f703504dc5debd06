"""Every overlay and environment builds; every object is valid for its kind with unknown keys rejected; the
Rollout is the locked-down canary the issue asks for; names agree with what infra/ creates."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import charts
from infra.addons import INFERENCE_TOKEN_SECRET, INGRESS_CLASS, PROMETHEUS_URL
from infra.identity import WORKLOADS
from tests.gitops.gitops_build import ENVS, GITOPS, INFERENCE, OVERLAYS, ROOT, build, by_kind, one, problems

INFERENCE_ACCOUNT = next(w for w in WORKLOADS if w.role == "inference").service_accounts[0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_inference_object_is_valid_for_its_kind(overlay: str) -> None:
    docs = build(INFERENCE / "overlays" / overlay)
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds == sorted(
        ["AnalysisTemplate", "ConfigMap", "HorizontalPodAutoscaler", "Ingress", "NetworkPolicy",
         "PodDisruptionBudget", "Rollout", "Service", "Service", "Service", "ServiceMonitor"]
    )  # fmt: skip
    for doc in docs:
        assert problems(doc) == [], f"{overlay}: {doc['kind']}/{doc['metadata']['name']}"
        assert doc["metadata"].get("namespace") == INFERENCE_ACCOUNT.namespace


@pytest.mark.parametrize("env", OVERLAYS)
def test_every_argo_cd_object_is_valid_for_its_kind(env: str) -> None:
    docs = build(ENVS / env)
    assert sorted(doc["kind"] for doc in docs) == ["AppProject", "Application", "Application"]
    for doc in docs:
        assert problems(doc) == [], f"{env}: {doc['kind']}/{doc['metadata']['name']}"


def test_the_closed_schemas_reject_a_misspelt_key() -> None:
    rollout = copy.deepcopy(one(build(INFERENCE / "overlays" / "staging"), "Rollout"))
    rollout["spec"]["strategy"]["canary"]["stepz"] = rollout["spec"]["strategy"]["canary"].pop("steps")
    assert any("stepz" in problem for problem in problems(rollout))
    service = copy.deepcopy(by_kind(build(INFERENCE / "overlays" / "staging"), "Service")[0])
    service["spec"]["selectr"] = {}
    assert problems(service)


def test_every_manifest_opens_with_a_line_on_its_intent() -> None:
    for path in sorted(GITOPS.rglob("*.yaml")):
        if path.parent.name == "workflows":
            continue  # generated files open with their generated-by line (tests/workflows)
        first = path.read_text().splitlines()[0]
        assert first.startswith("# ") and len(first) > 30, path


def _container(rollout: dict[str, Any]) -> dict[str, Any]:
    (container,) = rollout["spec"]["template"]["spec"]["containers"]
    return dict(container)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pod_is_probed_sized_and_locked_down(overlay: str) -> None:
    docs = build(INFERENCE / "overlays" / overlay)
    rollout = one(docs, "Rollout")
    pod = rollout["spec"]["template"]["spec"]
    container = _container(rollout)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == INFERENCE_ACCOUNT.name
    env = {e["name"]: e for e in container["env"]}
    assert env["RLOPS_SERVE_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == INFERENCE_TOKEN_SECRET
    assert env["RLOPS_SERVE_CHECKPOINT"]["value"].startswith("s3://")
    release = one(docs, "ConfigMap")["data"]
    assert container["image"] == release["image"]
    assert env["RLOPS_SERVE_CHECKPOINT"]["value"] == release["model"]
    assert not container["image"].endswith(":latest")


@pytest.mark.parametrize("overlay", ["staging", "prod"])
def test_the_canary_moves_by_exact_weights_with_analysis_between_steps(overlay: str) -> None:
    docs = build(INFERENCE / "overlays" / overlay)
    canary = one(docs, "Rollout")["spec"]["strategy"]["canary"]
    weights = [step["setWeight"] for step in canary["steps"] if "setWeight" in step]
    assert weights == [10, 25, 50, 100]
    for index, step in enumerate(canary["steps"][:-1]):
        if "setWeight" in step:
            following = canary["steps"][index + 1 : index + 3]
            assert "pause" in following[0] and "analysis" in following[1], (overlay, index)
    services = {s["metadata"]["name"] for s in by_kind(docs, "Service")}
    assert {canary["canaryService"], canary["stableService"]} <= services
    ingress = one(docs, "Ingress")
    assert canary["trafficRouting"]["nginx"]["stableIngress"] == ingress["metadata"]["name"]
    assert ingress["spec"]["ingressClassName"] == INGRESS_CLASS
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
    assert backend == canary["stableService"]
    templates = {t["metadata"]["name"] for t in by_kind(docs, "AnalysisTemplate")}
    used = {t["templateName"] for s in canary["steps"] if "analysis" in s for t in s["analysis"]["templates"]}
    assert used == templates


def test_dev_is_blue_green_with_pre_promotion_analysis() -> None:
    docs = build(INFERENCE / "overlays" / "dev")
    strategy = one(docs, "Rollout")["spec"]["strategy"]
    assert list(strategy) == ["blueGreen"]
    blue_green = strategy["blueGreen"]
    services = {s["metadata"]["name"] for s in by_kind(docs, "Service")}
    assert {blue_green["activeService"], blue_green["previewService"]} <= services
    assert blue_green["prePromotionAnalysis"]["templates"] == [{"templateName": "inference-health"}]


def _args(docs: tuple[dict[str, Any], ...]) -> dict[str, str]:
    return {a["name"]: a.get("value", "") for a in one(docs, "AnalysisTemplate")["spec"]["args"]}


def test_prod_is_bigger_and_stricter_than_staging() -> None:
    staging, prod = build(INFERENCE / "overlays" / "staging"), build(INFERENCE / "overlays" / "prod")
    assert one(prod, "Rollout")["spec"]["replicas"] > one(staging, "Rollout")["spec"]["replicas"]
    assert float(_args(prod)["min-success-rate"]) > float(_args(staging)["min-success-rate"])
    assert float(_args(prod)["max-p99-seconds"]) < float(_args(staging)["max-p99-seconds"])
    assert one(prod, "HorizontalPodAutoscaler")["spec"]["minReplicas"] == one(prod, "Rollout")["spec"]["replicas"]
    pauses = [
        s["pause"]["duration"] for s in one(prod, "Rollout")["spec"]["strategy"]["canary"]["steps"] if "pause" in s
    ]
    assert pauses == ["10m", "10m", "30m"]


def test_analysis_reads_the_prometheus_infra_installs_and_the_metrics_the_service_exports() -> None:
    template = one(build(INFERENCE / "overlays" / "staging"), "AnalysisTemplate")
    assert _args(build(INFERENCE / "overlays" / "staging"))["prometheus"] == PROMETHEUS_URL
    exported = set(re.findall(r'"(rlops_serve_[a-z_]+)"', (ROOT / "ml" / "serve" / "metrics.py").read_text()))
    for metric in template["spec"]["metrics"]:
        names = set(re.findall(r"rlops_serve_[a-z_]+", metric["provider"]["prometheus"]["query"]))
        base = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in names}
        assert base and base <= exported, (metric["name"], base - exported)


def test_metrics_are_scraped_once_per_pod_with_the_pod_template_hash() -> None:
    docs = build(INFERENCE / "overlays" / "staging")
    monitor = one(docs, "ServiceMonitor")
    assert monitor["spec"]["podTargetLabels"] == ["rollouts-pod-template-hash"]
    (scraped,) = [s for s in by_kind(docs, "Service") if s["metadata"].get("labels", {}).get("rlops.io/scrape")]
    assert scraped["spec"]["selector"] == one(docs, "Rollout")["spec"]["selector"]["matchLabels"]
    container = _container(one(docs, "Rollout"))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RLOPS_SERVE_METRICS_PORT"] == str(ports["metrics"])
    assert env["RLOPS_SERVE_PORT"] == str(ports["http"])
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def test_the_network_policy_admits_only_the_ingress_controller_and_prometheus() -> None:
    policy = one(build(INFERENCE / "overlays" / "prod"), "NetworkPolicy")
    sources = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for rule in policy["spec"]["ingress"]
        for peer in rule["from"]
    }
    admitted = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]: [p["port"] for p in rule["ports"]]
        for rule in policy["spec"]["ingress"]
        for peer in rule["from"]
    }
    assert sources == {charts.INGRESS_NGINX.namespace, charts.KUBE_PROMETHEUS_STACK.namespace}
    # The API for the ingress controller, /metrics (its own port) for Prometheus, nothing else.
    assert admitted == {charts.INGRESS_NGINX.namespace: [8080], charts.KUBE_PROMETHEUS_STACK.namespace: [9090]}
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]


@pytest.mark.parametrize("env", OVERLAYS)
def test_each_environment_syncs_its_own_overlay_within_the_project(env: str) -> None:
    docs = build(ENVS / env)
    project = one(docs, "AppProject")
    apps = {a["metadata"]["name"]: a for a in by_kind(docs, "Application")}
    assert apps["inference"]["spec"]["source"]["path"] == f"gitops/inference/overlays/{env}"
    assert apps["workflows"]["spec"]["source"]["path"] == "gitops/workflows"
    allowed = {(d["server"], d["namespace"]) for d in project["spec"]["destinations"]}
    kinds = {k["kind"] for k in project["spec"]["namespaceResourceWhitelist"]}
    assert project["spec"]["clusterResourceWhitelist"] == []
    for app in apps.values():
        spec = app["spec"]
        assert spec["project"] == project["metadata"]["name"]
        assert spec["source"]["repoURL"] in project["spec"]["sourceRepos"]
        assert (spec["destination"]["server"], spec["destination"]["namespace"]) in allowed
        source = ROOT / spec["source"]["path"]
        synced = build(source) if (source / "kustomization.yaml").exists() else _plain(source)
        assert {doc["kind"] for doc in synced} <= kinds, spec["source"]["path"]
        assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    windows = project["spec"].get("syncWindows", [])
    if env == "prod":
        (window,) = windows
        assert (window["kind"], window["applications"], window["manualSync"]) == ("allow", ["inference"], True)
    else:
        assert windows == []


def _plain(folder: Path) -> tuple[dict[str, Any], ...]:
    return tuple(yaml.safe_load(path.read_text()) for path in sorted(folder.glob("*.yaml")))


def test_each_stack_points_its_root_application_at_its_own_environment() -> None:
    for env in OVERLAYS:
        config = yaml.safe_load((ROOT / f"Pulumi.{env}.yaml").read_text())["config"]
        path = config["rlops:gitopsPath"]
        assert path == f"gitops/envs/{env}"
        assert (ROOT / path / "kustomization.yaml").is_file()
        repo = f"https://github.com/{config['rlops:githubRepository']}.git"
        for app in by_kind(build(ROOT / path), "Application"):
            assert app["spec"]["source"]["repoURL"] == repo
