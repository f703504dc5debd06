"""The pack as a whole: its entry point, enforcement, policy names, and how the offline evaluator behaves."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pulumi_policy
import pytest
import yaml
from guard_cases import TAGS, resource
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

from policies.rlops_guard.evaluate import evaluate, policy_config
from policies.rlops_guard.pack import ENFORCEMENT, PACK_NAME, all_policies

PACK_DIR = Path(__file__).resolve().parents[2] / "policies" / "rlops_guard"
EXPECTED = {
    "s3-bucket-encrypted",
    "s3-bucket-versioned",
    "s3-public-access-blocked",
    "s3-tls-only",
    "ecr-scan-on-push",
    "ecr-immutable-tags",
    "eks-private-endpoint",
    "eks-secrets-encryption",
    "eks-control-plane-logging",
    "no-open-ingress",
    "no-iam-wildcard-admin",
    "oidc-trust-pinned",
    "gpu-node-group-guard",
    "required-tags",
    "helm-chart-pinned",
    "ingress-controller-internal",
}


def test_pack_holds_every_required_policy_with_a_description() -> None:
    policies = all_policies()
    assert {p.name for p in policies} == EXPECTED
    assert len(policies) == len(EXPECTED)
    assert all(len(p.description) > 20 for p in policies)


def test_entry_point_builds_a_mandatory_pack(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[dict[str, Any]] = []

    # The real PolicyPack starts a gRPC server and blocks; record what __main__ hands it instead.
    def record(**kwargs: Any) -> None:
        built.append(kwargs)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", record)
    runpy.run_path(str(PACK_DIR / "__main__.py"), run_name="__main__")
    (pack,) = built
    assert pack["name"] == PACK_NAME == "rlops-guard"
    assert pack["enforcement_level"] == ENFORCEMENT == EnforcementLevel.MANDATORY
    assert {p.name for p in pack["policies"]} == EXPECTED


def test_pack_project_file_uses_python_and_the_repository_venv() -> None:
    project = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert (PACK_DIR / project["runtime"]["options"]["virtualenv"]).resolve() == PACK_DIR.parents[1] / ".venv"
    assert project["version"]


def test_schema_defaults_become_policy_config() -> None:
    (gpu,) = [p for p in all_policies() if p.name == "gpu-node-group-guard"]
    assert policy_config(gpu) == {"maxNodesPerGroup": 8}
    assert policy_config(gpu, {"maxNodesPerGroup": 3}) == {"maxNodesPerGroup": 3}


def test_violations_of_mandatory_policies_fail_and_advisory_ones_do_not() -> None:
    untagged = resource("aws:ec2/vpc:Vpc", "vpc")
    result = evaluate([untagged])
    assert not result.passed
    assert [str(v) for v in result.violations] == [
        "[required-tags] aws:ec2/vpc:Vpc 'vpc': 'vpc': missing required tags "
        "['project', 'environment', 'owner', 'cost-center']"
    ]
    (tags,) = [p for p in all_policies() if p.name == "required-tags"]
    tags.enforcement_level = EnforcementLevel.ADVISORY
    advisory = evaluate([untagged], [tags])
    assert advisory.passed and len(advisory.violations) == 1
    tags.enforcement_level = EnforcementLevel.DISABLED
    assert evaluate([untagged], [tags]).violations == ()


class _Deferred(ResourceValidationPolicy):
    """A check that hands back something to await instead of finishing."""

    def validate(self, args: Any, report: Any) -> Any:
        return object()


def test_a_check_that_does_not_finish_synchronously_is_refused() -> None:
    policy = _Deferred(name="async-check", description="returns an awaitable")
    with pytest.raises(TypeError, match="async-check"):
        evaluate([resource("aws:ec2/vpc:Vpc", "vpc", tags=TAGS)], [policy])


def test_a_clean_resource_set_passes_with_no_violations() -> None:
    result = evaluate([resource("aws:ec2/vpc:Vpc", "vpc", tags=TAGS)])
    assert result.passed
    assert result.report() == "no violations"
