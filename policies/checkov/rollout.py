"""Custom Checkov checks for Argo Rollouts' `Rollout`, which Checkov's built-in container checks skip.

Loaded with `checkov --external-checks-dir policies/checkov` (tests/gitops runs them on every built overlay).
Each check reads the pod template's containers the way the built-in checks read a Deployment's.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.kubernetes.checks.resource.base_spec_check import BaseK8Check

# The project's registry: the ECR repositories infra/registry.py creates, <account>.dkr.ecr.<region>/rlops/<image>.
PROJECT_REGISTRY = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/rlops/[a-z0-9-]+[:@]")


def _pod(conf: dict[str, Any]) -> dict[str, Any]:
    spec = conf.get("spec") or {}
    template = spec.get("template") or {}
    return template.get("spec") or {}


def _containers(conf: dict[str, Any]) -> list[dict[str, Any]]:
    pod = _pod(conf)
    return [c for c in [*(pod.get("containers") or []), *(pod.get("initContainers") or [])] if isinstance(c, dict)]


class _RolloutCheck(BaseK8Check):
    def __init__(self, name: str, check_id: str) -> None:
        categories = [CheckCategories.KUBERNETES]
        super().__init__(name=name, id=check_id, categories=categories, supported_entities=["Rollout"])

    def scan_spec_conf(self, conf: dict[str, Any]) -> CheckResult:
        containers = _containers(conf)
        if not containers:
            return CheckResult.FAILED
        return CheckResult.PASSED if all(self.passes(c, _pod(conf)) for c in containers) else CheckResult.FAILED

    @abstractmethod
    def passes(self, container: dict[str, Any], pod: dict[str, Any]) -> bool:
        """Whether one container of the pod template meets this check."""


class RolloutProbes(_RolloutCheck):
    def __init__(self) -> None:
        super().__init__("Rollout containers have liveness and readiness probes", "CKV_RLOPS_1")

    def passes(self, container: dict[str, Any], pod: dict[str, Any]) -> bool:
        return bool(container.get("livenessProbe")) and bool(container.get("readinessProbe"))


class RolloutResources(_RolloutCheck):
    def __init__(self) -> None:
        super().__init__("Rollout containers request and limit CPU and memory", "CKV_RLOPS_2")

    def passes(self, container: dict[str, Any], pod: dict[str, Any]) -> bool:
        resources = container.get("resources") or {}
        return all({"cpu", "memory"} <= set(resources.get(kind) or {}) for kind in ("requests", "limits"))


class RolloutNonRoot(_RolloutCheck):
    def __init__(self) -> None:
        super().__init__("Rollout containers run as a non-root user", "CKV_RLOPS_3")

    def passes(self, container: dict[str, Any], pod: dict[str, Any]) -> bool:
        context = {**(pod.get("securityContext") or {}), **(container.get("securityContext") or {})}
        return context.get("runAsNonRoot") is True and context.get("runAsUser", 1) != 0


class RolloutReadOnlyRoot(_RolloutCheck):
    def __init__(self) -> None:
        super().__init__("Rollout containers have a read-only root filesystem", "CKV_RLOPS_4")

    def passes(self, container: dict[str, Any], pod: dict[str, Any]) -> bool:
        context = container.get("securityContext") or {}
        return context.get("readOnlyRootFilesystem") is True and context.get("allowPrivilegeEscalation") is False


class RolloutPinnedImage(_RolloutCheck):
    def __init__(self) -> None:
        super().__init__("Rollout images name a tag or digest, never latest", "CKV_RLOPS_5")

    def passes(self, container: dict[str, Any], pod: dict[str, Any]) -> bool:
        image = str(container.get("image") or "")
        if "@sha256:" in image:
            return True
        name = image.rsplit("/", 1)[-1]
        return ":" in name and not name.endswith(":latest")


class RolloutProjectRegistry(_RolloutCheck):
    def __init__(self) -> None:
        super().__init__("Rollout images come from the project's ECR registry only", "CKV_RLOPS_6")

    def passes(self, container: dict[str, Any], pod: dict[str, Any]) -> bool:
        return bool(PROJECT_REGISTRY.match(str(container.get("image") or "")))


CHECKS = [
    RolloutProbes(),
    RolloutResources(),
    RolloutNonRoot(),
    RolloutReadOnlyRoot(),
    RolloutPinnedImage(),
    RolloutProjectRegistry(),
]
