"""Checkov's kubernetes framework on every built overlay, with the project's own checks for the `Rollout`
kind (policies/checkov), which the built-in container checks skip."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gitops.gitops_build import ENVS, INFERENCE, OVERLAYS, ROOT, build, one

CHECKOV = ROOT / ".tools" / "bin" / "checkov"
OWN_CHECKS = {f"CKV_RLOPS_{n}" for n in range(1, 7)}
# A built-in check that fails must be fixed or listed here with the reason it does not apply.
NOT_APPLICABLE: dict[str, str] = {}


def checkov_report(folder: Path) -> dict[str, Any]:
    argv = [str(CHECKOV), "-d", str(folder), "--framework", "kubernetes", "--skip-download", "-o", "json"]
    argv += ["--external-checks-dir", str(ROOT / "policies" / "checkov")]
    if NOT_APPLICABLE:
        argv += ["--skip-check", ",".join(NOT_APPLICABLE)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.stdout.strip(), done.stderr[-2000:]
    report = json.loads(done.stdout)
    found: dict[str, Any] = report[0] if isinstance(report, list) else report
    return found


def checkov(folder: Path) -> dict[str, Any]:
    results: dict[str, Any] = checkov_report(folder)["results"]
    return results


def write(folder: Path, docs: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "built.yaml").write_text(yaml.safe_dump_all(list(docs)))
    return folder


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_passes_on_the_built_overlay_with_the_rollout_checks(overlay: str, tmp_path: Path) -> None:
    results = checkov(write(tmp_path, build(INFERENCE / "overlays" / overlay)))
    assert results["failed_checks"] == []
    passed_on_rollout = {c["check_id"] for c in results["passed_checks"] if c["resource"].startswith("Rollout.")}
    assert passed_on_rollout == OWN_CHECKS


def test_checkov_has_nothing_to_judge_in_the_argo_cd_environments(tmp_path: Path) -> None:
    # Checkov has no checks for Argo CD's kinds: the closed CRD schemas and test_gitops_manifests judge them.
    docs = [doc for env in OVERLAYS for doc in build(ENVS / env)]
    report = checkov_report(write(tmp_path, docs))
    assert (report["failed"], report["resource_count"], report["parsing_errors"]) == (0, 0, 0)


def test_the_rollout_checks_catch_an_unsafe_rollout(tmp_path: Path) -> None:
    rollout = copy.deepcopy(one(build(INFERENCE / "overlays" / "staging"), "Rollout"))
    container = rollout["spec"]["template"]["spec"]["containers"][0]
    container["image"] = "docker.io/someone/inference:latest"
    for key in ("livenessProbe", "readinessProbe", "resources", "securityContext"):
        container.pop(key)
    rollout["spec"]["template"]["spec"]["securityContext"] = {"runAsUser": 0}
    failed = {c["check_id"] for c in checkov(write(tmp_path, [rollout]))["failed_checks"]}
    assert failed >= OWN_CHECKS
