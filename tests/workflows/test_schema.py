"""The rendered workflows are valid for the Argo Workflows release the cluster runs, round-trip through Hera's
models, embed a valid KubeRay RayJob, pass Checkov, carry the settings every template must carry, and agree
with the names infra/ and docker/ define."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import hera.workflows.models as hera_models
import jsonschema
import pytest
import yaml

from infra import charts
from infra.addons import WORKFLOWS_CONFIG_MAP
from infra.cluster import GPU_TAINT_KEY
from infra.config import NodeGroupConfig
from infra.identity import WORKLOADS
from tests.k8s_schema import closed
from workflows import catalog, common, research

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).with_name("data")
ARGO_SCHEMA = DATA / "argo-workflows-v4.1.2.schema.json"
RAYJOB_SCHEMA = DATA / "kuberay-rayjob-v1.schema.yaml"
CHECKOV = ROOT / ".tools" / "bin" / "checkov"
DOCUMENTS = {e.name: yaml.safe_load(e.render()) for e in catalog.CATALOG}
TEMPLATES = {n: d for n, d in DOCUMENTS.items() if d["kind"] == "WorkflowTemplate"}


@cache
def argo_validator(kind: str) -> jsonschema.Draft202012Validator:
    """The schema's own definition of `kind`: its top-level oneOf cannot tell a Workflow from a WorkflowTemplate,
    whose shapes are the same."""
    schema = closed(json.loads(ARGO_SCHEMA.read_text()))
    (ref,) = [item["$ref"] for item in schema.pop("oneOf") if item["$ref"].endswith(f".{kind}")]
    return jsonschema.Draft202012Validator({**schema, "$ref": ref})


@cache
def rayjob_validator() -> jsonschema.Draft7Validator:
    schema = closed(yaml.safe_load(RAYJOB_SCHEMA.read_text()))
    schema["properties"]["metadata"] = {"type": "object"}  # ObjectMeta is the API server's, not in the CRD
    return jsonschema.Draft7Validator(schema)


def _errors(validator: jsonschema.protocols.Validator, document: Any) -> list[str]:
    found = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in found]


def _rayjob() -> dict[str, Any]:
    (tune,) = [t for t in TEMPLATES[research.NAME]["spec"]["templates"] if t["name"] == "tune"]
    manifest: dict[str, Any] = yaml.safe_load(tune["resource"]["manifest"])
    return manifest


def _pods() -> dict[str, dict[str, Any]]:
    """The pods the templates make Kubernetes run: each container step with its workflow's pod settings, and
    the RayJob's head, worker and submitter pods."""
    pods = {}
    for name, document in TEMPLATES.items():
        spec = document["spec"]
        for template in spec["templates"]:
            if "container" not in template:
                continue
            pod_spec = {
                "serviceAccountName": spec["serviceAccountName"],
                "securityContext": spec["securityContext"],
                "volumes": spec["volumes"],
                "containers": [{**template["container"], "name": "main"}],
                "restartPolicy": "Never",
            }
            for key in ("nodeSelector", "tolerations"):
                if key in template:
                    pod_spec[key] = template[key]
            pods[f"{name}-{template['name']}"] = pod_spec
    ray = _rayjob()["spec"]
    pods["rayjob-submitter"] = ray["submitterPodTemplate"]["spec"]
    pods["rayjob-head"] = ray["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    for group in ray["rayClusterSpec"]["workerGroupSpecs"]:
        pods[f"rayjob-{group['groupName']}"] = group["template"]["spec"]
    return pods


# --------------------------------------------------------------------------------------------------------------
# validity


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_rendered_object_validates_against_argo_workflows_schema_with_unknown_keys_rejected(name: str) -> None:
    document = DOCUMENTS[name]
    assert _errors(argo_validator(document["kind"]), document) == []


def test_the_closed_schemas_reject_a_misspelt_key() -> None:
    typo = copy.deepcopy(DOCUMENTS[research.NAME])
    typo["spec"]["templates"][1]["activeDeadlineSecond"] = 60
    assert any("activeDeadlineSecond" in e for e in _errors(argo_validator("WorkflowTemplate"), typo))
    job = _rayjob()
    job["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParam"] = {}
    assert any("rayStartParam" in e for e in _errors(rayjob_validator(), job))


@pytest.mark.parametrize("name", DOCUMENTS)
def test_hera_models_round_trip_each_document_unchanged(name: str) -> None:
    document = DOCUMENTS[name]
    model = getattr(hera_models, document["kind"])
    again = model.model_validate(document).model_dump(by_alias=True, exclude_none=True, mode="json")
    assert again == document


def test_embedded_rayjob_validates_against_kuberay_crd_schema() -> None:
    job = _rayjob()
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    assert _errors(rayjob_validator(), job) == []


# --------------------------------------------------------------------------------------------------------------
# what every template carries


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_sets_deadlines_gc_ttl_account_and_locked_down_pods(name: str) -> None:
    spec = TEMPLATES[name]["spec"]
    assert spec["activeDeadlineSeconds"] > 0
    assert spec["podGC"] == {"strategy": "OnPodSuccess"}
    assert spec["ttlStrategy"]["secondsAfterSuccess"] > 0 and spec["ttlStrategy"]["secondsAfterFailure"] > 0
    assert spec["serviceAccountName"] == "argo-workflow"
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 10001
    work = [t for t in spec["templates"] if "dag" not in t]
    assert work
    for template in work:
        assert int(template["activeDeadlineSeconds"]) > 0, template["name"]
        retry = template["retryStrategy"]
        # Infrastructure errors only: a step that exits non-zero (bad config) is Failed, never retried.
        assert retry["retryPolicy"] == "OnError" and "expression" not in retry, template["name"]
        assert retry["backoff"]["duration"] and int(retry["limit"]) >= 1


@pytest.mark.parametrize("pod", sorted(_pods()))
def test_every_container_has_requests_limits_and_a_read_only_non_root_context(pod: str) -> None:
    spec = _pods()[pod]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    volumes = {v["name"]: v for v in spec["volumes"]}
    for container in spec["containers"]:
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{pod}: {kind}"
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        scratch = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert scratch and "emptyDir" in volumes[scratch[0]["name"]], f"{pod}: no writable scratch"


def test_rayjob_cleans_up_after_itself_and_reports_through_its_status() -> None:
    job = _rayjob()["spec"]
    assert job["shutdownAfterJobFinishes"] is True and job["ttlSecondsAfterFinished"] > 0
    assert job["activeDeadlineSeconds"] > 0 and job["backoffLimit"] == 0
    assert job["entrypoint"].startswith("rlops pipeline stage tune ")
    assert "--set ray_address=auto" in job["entrypoint"]
    assert "--output '{{workflow.parameters.tuning-prefix}}/{{workflow.name}}/tune'" in job["entrypoint"]
    assert job["rayClusterSpec"]["rayVersion"] == _pinned("ray")
    (tune,) = [t for t in TEMPLATES[research.NAME]["spec"]["templates"] if t["name"] == "tune"]
    assert tune["resource"]["successCondition"] == (
        "status.jobDeploymentStatus == Complete,status.jobStatus == SUCCEEDED"
    )
    assert "status.jobStatus in (FAILED,STOPPED)" in tune["resource"]["failureCondition"]
    for pod in ("rayjob-head", "rayjob-cpu", "rayjob-submitter"):
        assert _pods()[pod]["serviceAccountName"] == "ray-worker"


def test_gpu_training_asks_for_a_gpu_on_the_gpu_node_group() -> None:
    fit = _pods()["rlops-train-fit"]
    assert fit["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    from infra.cluster import gpu_labels

    labels = gpu_labels(NodeGroupConfig(name="gpu", instance_types=["g5.xlarge"], min_size=0, max_size=2,
                                        desired_size=0, capacity_type="ON_DEMAND", disk_size_gib=100))  # fmt: skip
    assert fit["nodeSelector"].items() <= labels.items()
    assert fit["tolerations"] == [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]


def test_nightly_reruns_research_without_overlap() -> None:
    cron = DOCUMENTS["rlops-research-nightly"]["spec"]
    assert cron["schedules"] and cron["timezone"] and cron["concurrencyPolicy"] == "Forbid"
    assert cron["successfulJobsHistoryLimit"] > 0 and cron["failedJobsHistoryLimit"] > 0
    assert cron["workflowSpec"]["workflowTemplateRef"] == {"name": research.NAME}
    assert cron["workflowSpec"]["serviceAccountName"] == "argo-workflow"
    assert cron["workflowSpec"]["securityContext"]["runAsNonRoot"] is True


# --------------------------------------------------------------------------------------------------------------
# agreement with infra/, docker/ and the pins


def _pinned(package: str) -> str:
    match = re.search(rf"^{package}==(\S+)$", (ROOT / "constraints.txt").read_text(), flags=re.MULTILINE)
    assert match, package
    return match.group(1)


def test_argo_workflows_version_agrees_in_chart_schema_and_hera_models() -> None:
    schema = json.loads(ARGO_SCHEMA.read_text())
    assert schema["$comment"].startswith(f"Argo Workflows {charts.ARGO_WORKFLOWS_VERSION} ")
    hera_source = Path(hera_models.__file__).parent / "io" / "argoproj" / "workflow" / "v1alpha1.py"
    generated = re.search(r"filename:\s+argo-workflows-(\d+)\.(\d+)\.(\d+)\.json", hera_source.read_text())
    assert generated, "Hera's models no longer say which Argo Workflows release they were generated from"
    major, minor = (int(x) for x in charts.ARGO_WORKFLOWS_VERSION.lstrip("v").split(".")[:2])
    # Same major; Hera's minor may trail the server's (a minor release only adds fields).
    assert int(generated.group(1)) == major and int(generated.group(2)) <= minor
    assert _pinned("hera") == "7.1.0"


def test_cluster_names_agree_with_infra_and_the_images() -> None:
    accounts = {w.role: w.service_accounts[0] for w in WORKLOADS}
    workflows, ray = accounts["workflows"], accounts["ray"]
    assert (workflows.namespace, workflows.name) == (common.NAMESPACE, common.SERVICE_ACCOUNT)
    assert (ray.namespace, ray.name) == (common.RAY_NAMESPACE, common.RAY_SERVICE_ACCOUNT)
    assert common.GPU_TAINT_KEY == GPU_TAINT_KEY
    assert common.CONFIG_MAP == WORKFLOWS_CONFIG_MAP
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert f"--uid {common.IMAGE_USER} " in dockerfile and f"USER {common.IMAGE_USER}:{common.IMAGE_USER}" in dockerfile
    targets = set(re.findall(r"^FROM \S+ AS (\S+)$", dockerfile, flags=re.MULTILINE))
    images = set(re.findall(r"\{\{workflow\.parameters\.registry\}\}/([\w-]+):", json.dumps(DOCUMENTS)))
    assert images and images <= targets
    used = set(re.findall(r"\{\{workflow\.parameters\.([\w-]+)\}\}", json.dumps(DOCUMENTS)))
    for name, document in DOCUMENTS.items():
        declared = {p["name"] for p in document["spec"].get("arguments", {}).get("parameters", [])}
        if document["kind"] == "WorkflowTemplate":
            text = json.dumps(document)
            assert {p for p in used if "{{workflow.parameters." + p + "}}" in text} <= declared, name
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), flags=re.MULTILINE)
    assert version is not None and version.group(1) == common.DEFAULT_IMAGE_TAG


# --------------------------------------------------------------------------------------------------------------
# Checkov

# Checks that do not fit a batch pod here, each for a stated reason; everything else must pass.
NOT_APPLICABLE = {
    "CKV_K8S_8": "liveness probe: a batch step that hangs is ended by its activeDeadlineSeconds",
    "CKV_K8S_9": "readiness probe: nothing connects to a batch step",
    "CKV_K8S_43": "image digest: ECR tags are immutable (infra/registry.py), so a tag names one image",
    "CKV2_K8S_6": "network policies are the cluster's GitOps concern, not a workflow's",
}
# Argo's executor reports a step's outputs through the Kubernetes API with the pod's token; Ray pods need none.
TOKEN_CHECK = "CKV_K8S_38"


def _checkov(folder: Path, framework: str) -> dict[str, Any]:
    result = subprocess.run(
        [str(CHECKOV), "-d", str(folder), "--framework", framework, "--skip-download", "-o", "json",
         "--skip-check", ",".join(NOT_APPLICABLE)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.stdout.strip(), result.stderr[-2000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_checkov_argo_workflows_framework_passes_on_the_rendered_files() -> None:
    report = _checkov(ROOT / "gitops" / "workflows", "argo_workflows")
    results = report["results"]
    assert results["failed_checks"] == []
    checked = {Path(c["file_path"]).name for c in results["passed_checks"]}
    assert checked == {f"{name}.yaml" for name in TEMPLATES}  # Checkov's Argo checks read WorkflowTemplates


def test_checkov_kubernetes_framework_passes_on_the_pods_the_templates_run(tmp_path: Path) -> None:
    for name, spec in _pods().items():
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "argo"}, "spec": spec}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(pod))
    report = _checkov(tmp_path, "kubernetes")
    failed = {(c["check_id"], c["resource"].split(".")[-1]) for c in report["results"]["failed_checks"]}
    assert report["summary"]["passed"] > 0
    assert {check for check, _ in failed} <= {TOKEN_CHECK}, failed
    assert all(not pod.startswith("rayjob-") for _, pod in failed)
