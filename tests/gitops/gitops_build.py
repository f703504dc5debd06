"""Building the GitOps tree the way Argo CD does (`kubectl kustomize`) and validating what comes out: core kinds
against Kubernetes' own schemas, Argo CD and Argo Rollouts kinds against their official CRD schemas, closed."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from tests.k8s_schema import closed

ROOT = Path(__file__).resolve().parents[2]
GITOPS = ROOT / "gitops"
DATA = Path(__file__).with_name("data")
KUBERNETES_VERSION = "1.32"
OVERLAYS = ("dev", "staging", "prod")
INFERENCE = GITOPS / "inference"
ENVS = GITOPS / "envs"
CRD_SCHEMAS = {
    "Rollout": "rollout-v1alpha1.schema.yaml",
    "AnalysisTemplate": "analysistemplate-v1alpha1.schema.yaml",
    "Application": "application-v1alpha1.schema.yaml",
    "AppProject": "appproject-v1alpha1.schema.yaml",
}
# prometheus-operator's CRD is not among the official schemas at hand: the fields this tree uses, closed.
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {"type": "object"},
                "podTargetLabels": {"type": "array", "items": {"type": "string"}},
                "endpoints": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scheme": {"enum": ["http", "https"]},
                        },
                    },
                },
            },
        },
    },
}


@cache
def build(folder: Path) -> tuple[dict[str, Any], ...]:
    done = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def by_kind(docs: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: tuple[dict[str, Any], ...], kind: str) -> dict[str, Any]:
    (found,) = by_kind(docs, kind)
    return found


@cache
def crd_validator(kind: str) -> jsonschema.Draft7Validator:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    schema = closed(yaml.load((DATA / CRD_SCHEMAS[kind]).read_text(), Loader=loader))  # noqa: S506
    schema["properties"]["metadata"] = {"type": "object"}  # ObjectMeta is the API server's, not in the CRD
    return jsonschema.Draft7Validator(schema)


def problems(doc: dict[str, Any]) -> list[str]:
    """Everything wrong with one built object, by the schema of its kind; empty when it is valid."""
    kind = doc["kind"]
    if kind in CRD_SCHEMAS or kind == "ServiceMonitor":
        validator = crd_validator(kind) if kind in CRD_SCHEMAS else jsonschema.Draft7Validator(SERVICE_MONITOR_SCHEMA)
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(doc)]
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'/'.join(map(str, exc.path))}: {exc.message[:200]}"]
    return []
