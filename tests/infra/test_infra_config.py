"""Each stack's config file, read through the one config class, and every validation rule it enforces."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pulumi_harness import RecordingMocks, run_with_mocks, stack_config

from infra.config import REQUIRED_TAG_KEYS, ConfigError, StackConfig, load_stack_config, parse_mapping

STACKS = ("dev", "staging", "prod")


@pytest.mark.parametrize("stack", STACKS)
def test_stack_file_parses_and_matches_what_pulumi_config_reads(stack: str) -> None:
    from_file = parse_mapping(stack, stack_config(stack))
    seen: list[StackConfig] = []

    def program() -> None:
        seen.append(load_stack_config())

    run_with_mocks(program, stack=stack)
    assert seen == [from_file]
    assert from_file.environment == stack
    assert set(REQUIRED_TAG_KEYS) <= set(from_file.tags)
    assert from_file.tags["environment"] == stack


def test_prod_spans_three_zones_with_a_nat_gateway_each() -> None:
    prod = parse_mapping("prod", stack_config("prod"))
    assert len(prod.availability_zones) == 3
    assert prod.nat_gateway_per_az
    assert prod.system_nodes.min_size >= 2


@pytest.mark.parametrize("stack", STACKS)
def test_gpu_groups_scale_from_zero_within_the_cap(stack: str) -> None:
    config = parse_mapping(stack, stack_config(stack))
    assert config.gpu_node_groups
    for group in config.gpu_node_groups:
        assert (group.min_size, group.desired_size) == (0, 0)
        assert group.max_size >= 1
    assert sum(g.max_size for g in config.gpu_node_groups) <= config.gpu_node_cap


def test_defaults_fill_everything_but_identity_and_ownership() -> None:
    minimal = {
        "aws:region": "eu-west-1",
        "rlops:owner": "team",
        "rlops:costCenter": "cc-1",
        "rlops:githubRepository": "octo/rlops",
        "rlops:githubOwnerId": 1,
        "rlops:githubRepositoryId": 2,
    }
    config = parse_mapping("dev", minimal)
    assert config.availability_zones == ("eu-west-1a", "eu-west-1b")
    assert config.public_access_cidrs == ()
    assert config.gitops_repo_url == "https://github.com/octo/rlops.git"
    assert config.gpu_node_groups[0].capacity_type == "SPOT"
    assert config.force_destroy_buckets is True
    assert (
        parse_mapping(
            "staging", minimal | {"rlops:availabilityZones": ["eu-west-1a", "eu-west-1b"]}
        ).force_destroy_buckets
        is False
    )


def test_github_subjects_cover_both_claim_formats_for_each_protected_ref() -> None:
    config = parse_mapping(
        "dev", stack_config("dev") | {"rlops:githubProtectedRefs": ["refs/heads/main", "refs/tags/v1"]}
    )
    owner, name = config.github.repository.split("/")
    ids = f"repo:{owner}@{config.github.owner_id}/{name}@{config.github.repository_id}"
    assert set(config.github.subjects) == {
        f"repo:{owner}/{name}:ref:refs/heads/main",
        f"repo:{owner}/{name}:ref:refs/tags/v1",
        f"{ids}:ref:refs/heads/main",
        f"{ids}:ref:refs/tags/v1",
    }


def _broken(stack: str, **changes: Any) -> dict[str, Any]:
    values = copy.deepcopy(stack_config(stack))
    for key, value in changes.items():
        full = key if ":" in key else f"rlops:{key}"
        if value is None:
            values.pop(full, None)
        else:
            values[full] = value
    return values


INVALID = [
    ("dev", {"owner": None}, "rlops:owner"),
    ("dev", {"costCenter": "  "}, "rlops:costCenter"),
    ("dev", {"aws:region": None}, "aws:region"),
    ("prod", {"availabilityZones": ["us-east-1a", "us-east-1b"]}, "at least 3 zones"),
    ("dev", {"availabilityZones": ["us-east-1a", "us-east-1a"]}, "repeat"),
    ("dev", {"availabilityZones": ["us-east-1a", "us-west-2a"]}, "region us-east-1"),
    ("prod", {"natGatewayPerAz": False}, "rlops:natGatewayPerAz"),
    ("dev", {"vpcCidr": "10.0.0.0/24"}, "rlops:vpcCidr"),
    ("dev", {"vpcCidr": "not-a-cidr"}, "not an IPv4 network"),
    ("dev", {"publicAccessCidrs": ["0.0.0.0/0"]}, "too wide"),
    ("dev", {"publicAccessCidrs": ["300.1.1.1/32"]}, "not a network"),
    ("dev", {"gpuNodeGroups": [{"name": "gpu", "instanceTypes": ["m5.large"], "maxSize": 1}]}, "GPU instance types"),
    ("dev", {"gpuNodeGroups": [{"name": "gpu", "minSize": 1, "desiredSize": 1, "maxSize": 2}]}, "scale from zero"),
    ("dev", {"gpuNodeGroups": [{"name": "gpu", "capacityType": "RESERVED", "maxSize": 1}]}, "capacityType"),
    ("dev", {"gpuNodeGroups": [{"name": "gpu", "maxSize": 3}]}, "above gpuNodeCap"),
    ("dev", {"gpuNodeGroups": [{"name": "gpu", "maxSize": 1, "spot": True}]}, "unknown node group keys"),
    ("dev", {"gpuNodeGroups": [{"name": "System_GPU", "maxSize": 1}]}, "lower-case"),
    ("dev", {"gpuNodeGroups": [{"name": "system", "maxSize": 1}]}, "names repeat"),
    ("dev", {"systemNodes": {"minSize": 3, "desiredSize": 2, "maxSize": 4}}, "minSize <= desiredSize"),
    ("prod", {"systemNodes": {"minSize": 1, "desiredSize": 1, "maxSize": 4}}, "at least 2 system nodes"),
    ("dev", {"gpuNodeCap": 0}, "rlops:gpuNodeCap"),
    ("dev", {"gpuNodeCap": "four"}, "expected int"),
    ("dev", {"githubRepository": "just-a-name"}, "owner/name"),
    ("dev", {"githubOwnerId": None}, "rlops:githubOwnerId"),
    ("dev", {"githubProtectedRefs": ["refs/heads/*"]}, "exact"),
    ("dev", {"githubProtectedRefs": ["main"]}, "exact"),
    ("dev", {"githubProtectedRefs": []}, "at least one protected ref"),
    ("dev", {"githubOidcProviderArn": "token.actions"}, "not an IAM OIDC provider ARN"),
    ("dev", {"logRetentionDays": 45}, "rlops:logRetentionDays"),
    ("dev", {"extraTags": {"owner": "someone"}}, "required tags"),
    ("dev", {"gitopsPath": "../elsewhere"}, "inside the repository"),
    ("dev", {"forceDestroyBuckets": "yes"}, "expected bool"),
    ("dev", {"kubernetesVersion": "latest"}, "rlops:kubernetesVersion"),
    ("dev", {"gitopsRepoUrl": "git@github.com:o/r.git"}, "https://"),
]


@pytest.mark.parametrize(("stack", "changes", "message"), INVALID, ids=[m for _, _, m in INVALID])
def test_invalid_config_is_rejected_naming_the_key_and_stack(stack: str, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_mapping(stack, _broken(stack, **changes))
    assert f"stack '{stack}'" in str(caught.value)


def test_unknown_stack_names_are_rejected() -> None:
    with pytest.raises(ConfigError, match="stack name must be one of dev, staging, prod"):
        parse_mapping("qa", stack_config("dev"))


def test_a_bad_value_fails_the_program_before_any_resource_exists() -> None:
    def program() -> None:
        from infra.program import main

        main()

    mocks = RecordingMocks()
    with pytest.raises(ConfigError, match="rlops:gpuNodeCap"):
        run_with_mocks(program, stack="dev", config=_broken("dev", gpuNodeCap=100), mocks=mocks)
    assert mocks.resources == []
