"""Identity: each IRSA role reaches exactly its buckets and repositories; web-identity trust is pinned to
exact subjects; the GitHub role trusts only this repository's protected refs, in both `sub` formats."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi_harness import ACCOUNT, OIDC_ISSUER, RecordingMocks, run_with_mocks

from infra.identity import WORKLOADS, Identity, IdentityArgs, autoscaler_policy, workload_policy
from infra.registry import IMAGES
from infra.storage import PURPOSES

TAGS = {"project": "rlops", "environment": "dev", "owner": "o", "cost-center": "c"}
BUCKETS = {p: f"arn:aws:s3:::rlops-dev-{p}-x" for p in PURPOSES}
REPOS = {i: f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/rlops-dev/{i}" for i in IMAGES}
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1"
SUBJECTS = ("repo:octo/rlops:ref:refs/heads/main", "repo:octo@1/rlops@2:ref:refs/heads/main")
ISSUER_HOST = OIDC_ISSUER.removeprefix("https://")


def _identity(existing_github_provider: str | None = None) -> RecordingMocks:
    def program() -> Any:
        identity = Identity(
            "id",
            IdentityArgs(
                name_prefix="rlops-dev",
                cluster_name="rlops-dev-eks",
                oidc_provider_arn=f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER_HOST}",
                oidc_provider_url=ISSUER_HOST,
                bucket_arns=BUCKETS,
                repository_arns=REPOS,
                storage_key_arn=KEY,
                github_subjects=SUBJECTS,
                github_push_images=IMAGES,
                existing_github_provider_arn=existing_github_provider,
                tags=TAGS,
            ),
        )
        return identity.role_arns

    return run_with_mocks(program)


def _resources(doc: dict[str, Any]) -> set[str]:
    return {r for s in doc["Statement"] for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])}


@pytest.mark.parametrize("access", WORKLOADS, ids=[w.role for w in WORKLOADS])
def test_workload_policy_names_exactly_its_buckets_and_repositories(access: Any) -> None:
    doc = workload_policy(access, BUCKETS, REPOS, KEY)
    mine = [*access.read_buckets, *access.write_buckets]
    expected = {BUCKETS[b] for b in mine} | {f"{BUCKETS[b]}/*" for b in mine} | {KEY}
    expected |= {REPOS[i] for i in access.pull_images} | ({"*"} if access.pull_images else set())
    assert _resources(doc) == expected
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    # The only "*" resource is the registry login, which AWS cannot scope.
    assert {sid for sid, s in by_sid.items() if "*" in s["Resource"]} <= {"RegistryLogin"}
    assert by_sid.get("RegistryLogin", {"Action": ["ecr:GetAuthorizationToken"]})["Action"] == [
        "ecr:GetAuthorizationToken"
    ]
    if access.write_buckets:
        assert set(by_sid["WriteObjects"]["Resource"]) == {f"{BUCKETS[b]}/*" for b in access.write_buckets}
    else:
        assert "WriteObjects" not in by_sid
        assert "kms:GenerateDataKey" not in by_sid["UseDataKey"]["Action"]
    assert all("*" not in action for s in doc["Statement"] for action in s["Action"])


def test_inference_reads_artifacts_only() -> None:
    (inference,) = [w for w in WORKLOADS if w.role == "inference"]
    doc = workload_policy(inference, BUCKETS, REPOS, KEY)
    assert BUCKETS["market-data"] not in _resources(doc)
    assert REPOS["training"] not in _resources(doc)


def test_unknown_bucket_is_an_error_naming_the_workload() -> None:
    (ray,) = [w for w in WORKLOADS if w.role == "ray"]
    with pytest.raises(ValueError, match="workload ray"):
        workload_policy(ray, {"artifacts": "arn"}, REPOS, KEY)


def test_irsa_roles_trust_exact_service_accounts_with_string_equals() -> None:
    mocks = _identity()
    for access in WORKLOADS:
        role = mocks.named("aws:iam/role:Role", f"id-{access.role}")
        (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Principal"] == {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER_HOST}"}
        assert statement["Condition"] == {
            "StringEquals": {
                f"{ISSUER_HOST}:aud": "sts.amazonaws.com",
                f"{ISSUER_HOST}:sub": sorted(a.subject for a in access.service_accounts),
            }
        }
        policy = mocks.named("aws:iam/rolePolicy:RolePolicy", f"id-{access.role}")
        assert json.loads(policy.inputs["policy"]) == workload_policy(access, BUCKETS, REPOS, KEY)
    (roles,) = mocks.results
    assert set(roles) == {"workflows", "ray", "inference", "cluster-autoscaler", "github-actions"}


def test_github_role_trusts_protected_refs_in_both_formats_and_pushes_only_our_images() -> None:
    mocks = _identity()
    (provider,) = mocks.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert provider.inputs["url"] == "https://token.actions.githubusercontent.com"
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    role = mocks.named("aws:iam/role:Role", "id-github-actions")
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Federated": provider.outputs["arn"]}
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": sorted(SUBJECTS),
        }
    }
    push = json.loads(mocks.named("aws:iam/rolePolicy:RolePolicy", "id-github-actions").inputs["policy"])
    assert _resources(push) == set(REPOS.values()) | {"*"}
    (login,) = [s for s in push["Statement"] if s["Resource"] == ["*"]]
    assert login["Action"] == ["ecr:GetAuthorizationToken"]


def test_an_existing_github_provider_is_reused_not_duplicated() -> None:
    existing = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    mocks = _identity(existing)
    assert mocks.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider") == []
    trust = json.loads(mocks.named("aws:iam/role:Role", "id-github-actions").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Federated": existing}


def test_autoscaler_may_resize_only_this_clusters_groups() -> None:
    statements = {s["Sid"]: s for s in autoscaler_policy("rlops-dev-eks")["Statement"]}
    assert statements["ResizeOwnGroups"]["Condition"] == {
        "StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/rlops-dev-eks": "owned"}
    }
    assert all(a.split(":")[1].startswith(("Describe", "Get")) for a in statements["Describe"]["Action"])
