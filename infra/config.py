"""The one typed, validated view of a stack's configuration (Pulumi.<stack>.yaml).

Every value the program uses comes from `StackConfig`; components never call `pulumi.Config` themselves, so
a bad value fails once, up front, with a message naming the key and the stack.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import pulumi

CONFIG_NAMESPACE = "rlops"
PROJECT = "rlops"
ENVIRONMENTS = ("dev", "staging", "prod")
CAPACITY_TYPES = ("SPOT", "ON_DEMAND")
REQUIRED_TAG_KEYS = ("project", "environment", "owner", "cost-center")
# CloudWatch Logs rejects any other retention period.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 3653)
# GPU families on EC2 (g4dn, g5, g6, g6e, p4d, p5, ...): a GPU group on a CPU type would never schedule.
_GPU_INSTANCE_RE = re.compile(r"^(g\d+[a-z]*|p\d+[a-z]*)\.[0-9a-z]+$")
_REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")

Environment = Literal["dev", "staging", "prod"]
CapacityType = Literal["SPOT", "ON_DEMAND"]
Reader = Callable[[str, type], Any]


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the key and the stack."""


@dataclass(frozen=True)
class NodeGroupConfig:
    name: str
    instance_types: tuple[str, ...]
    capacity_type: CapacityType
    min_size: int
    max_size: int
    desired_size: int
    disk_size_gib: int


@dataclass(frozen=True)
class GitHubConfig:
    repository: str  # owner/name
    owner_id: int
    repository_id: int
    protected_refs: tuple[str, ...]
    # AWS allows one provider per issuer URL per account; a second stack in the same account reuses it.
    existing_oidc_provider_arn: str | None = None

    @property
    def subjects(self) -> tuple[str, ...]:
        """Exact `sub` values for each protected ref, in both the name-only and the immutable-ID format.

        GitHub switched the default claim to `repo:owner@ID/name@ID:...` for repositories created or renamed
        after July 2026; older ones keep `repo:owner/name:...` until an admin opts in, so trust both.
        """
        owner, name = self.repository.split("/")
        prefixes = (f"repo:{owner}/{name}", f"repo:{owner}@{self.owner_id}/{name}@{self.repository_id}")
        return tuple(f"{prefix}:ref:{ref}" for prefix in prefixes for ref in self.protected_refs)


@dataclass(frozen=True)
class StackConfig:
    environment: Environment
    region: str
    owner: str
    cost_center: str
    vpc_cidr: str
    availability_zones: tuple[str, ...]
    nat_gateway_per_az: bool
    kubernetes_version: str
    public_access_cidrs: tuple[str, ...]
    system_nodes: NodeGroupConfig
    gpu_node_groups: tuple[NodeGroupConfig, ...]
    gpu_node_cap: int
    github: GitHubConfig
    gitops_repo_url: str
    gitops_revision: str
    gitops_path: str
    log_retention_days: int
    tuning_results_retention_days: int
    force_destroy_buckets: bool
    deploy_addons: bool
    extra_tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def name_prefix(self) -> str:
        return f"{PROJECT}-{self.environment}"

    @property
    def cluster_name(self) -> str:
        return f"{self.name_prefix}-eks"

    @property
    def tags(self) -> dict[str, str]:
        return {
            **self.extra_tags,
            "project": PROJECT,
            "environment": self.environment,
            "owner": self.owner,
            "cost-center": self.cost_center,
        }


def load_stack_config() -> StackConfig:
    """Read the current stack's configuration through `pulumi.Config` (inside a deployment or mocks)."""
    cfg = pulumi.Config(CONFIG_NAMESPACE)

    def read(key: str, kind: type) -> Any:
        # Structured and scalar non-string values arrive as JSON text; get_object parses them.
        return cfg.get(key) if kind is str else cfg.get_object(key)

    region = pulumi.Config("aws").get("region")
    return parse_stack_config(pulumi.get_stack(), region, read)


def parse_mapping(stack: str, values: Mapping[str, Any]) -> StackConfig:
    """Validate a `config:` mapping as written in Pulumi.<stack>.yaml (keys with namespaces)."""
    region = values.get("aws:region")

    def read(key: str, _kind: type) -> Any:
        return values.get(f"{CONFIG_NAMESPACE}:{key}")

    return parse_stack_config(stack, region if isinstance(region, str) else None, read)


def parse_stack_config(stack: str, region: str | None, read: Reader) -> StackConfig:
    where = f"stack {stack!r}"
    if stack not in ENVIRONMENTS:
        raise ConfigError(f"{where}: stack name must be one of {', '.join(ENVIRONMENTS)}")
    env = cast(Environment, stack)
    if not region:
        raise ConfigError(f"aws:region in {where}: required (e.g. `pulumi config set aws:region us-east-1`)")

    def get(key: str, kind: type, default: Any) -> Any:
        value = read(key, kind)
        if value is None:
            return default
        if kind is int and isinstance(value, bool):
            raise ConfigError(f"{CONFIG_NAMESPACE}:{key} in {where}: expected an integer, got {value!r}")
        if not isinstance(value, kind):
            raise ConfigError(
                f"{CONFIG_NAMESPACE}:{key} in {where}: expected {kind.__name__}, got {type(value).__name__}"
            )
        return value

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{CONFIG_NAMESPACE}:{key} in {where}: {problem}")

    owner = get("owner", str, "")
    cost_center = get("costCenter", str, "")
    for key, value in (("owner", owner), ("costCenter", cost_center)):
        if not value.strip():
            raise fail(key, "required: every resource is tagged with it")

    vpc_cidr = get("vpcCidr", str, "10.0.0.0/16")
    try:
        network = ipaddress.IPv4Network(vpc_cidr)
    except ValueError as exc:
        raise fail("vpcCidr", f"not an IPv4 network: {exc}") from exc
    if not 16 <= network.prefixlen <= 20:
        raise fail("vpcCidr", f"prefix /{network.prefixlen} must be between /16 and /20 to fit the subnets")

    azs = tuple(_strings(get("availabilityZones", list, [f"{region}a", f"{region}b"]), "availabilityZones", fail))
    minimum_azs = 3 if env == "prod" else 2
    if len(azs) < minimum_azs:
        raise fail("availabilityZones", f"needs at least {minimum_azs} zones in {env}, got {len(azs)}")
    if len(set(azs)) != len(azs):
        raise fail("availabilityZones", f"zones repeat: {list(azs)}")
    if any(not az.startswith(region) for az in azs):
        raise fail("availabilityZones", f"every zone must be in region {region}: {list(azs)}")
    if len(azs) > 6:
        raise fail("availabilityZones", "at most 6 zones fit the subnet plan")

    nat_per_az = get("natGatewayPerAz", bool, env == "prod")
    if env == "prod" and not nat_per_az:
        raise fail("natGatewayPerAz", "prod needs one NAT gateway per zone so a zone outage keeps egress")

    public_cidrs = tuple(_strings(get("publicAccessCidrs", list, []), "publicAccessCidrs", fail))
    for cidr in public_cidrs:
        try:
            net = ipaddress.ip_network(cidr)
        except ValueError as exc:
            raise fail("publicAccessCidrs", f"{cidr!r} is not a network: {exc}") from exc
        if net.prefixlen < 8:
            raise fail("publicAccessCidrs", f"{cidr} is too wide for API access; list your egress ranges")

    system = _node_group(get("systemNodes", dict, {}), "systemNodes", fail, gpu=False, env=env)
    gpu_groups = tuple(
        _node_group(_as_dict(raw, "gpuNodeGroups", fail), "gpuNodeGroups", fail, gpu=True, env=env)
        for raw in get("gpuNodeGroups", list, [_DEFAULT_GPU_GROUP])
    )
    names = [g.name for g in (system, *gpu_groups)]
    if len(set(names)) != len(names):
        raise fail("gpuNodeGroups", f"node group names repeat: {names}")
    gpu_cap = get("gpuNodeCap", int, 4)
    if not 0 < gpu_cap <= 64:
        raise fail("gpuNodeCap", f"{gpu_cap} must be between 1 and 64")
    gpu_total = sum(g.max_size for g in gpu_groups)
    if gpu_total > gpu_cap:
        raise fail("gpuNodeGroups", f"maxSize adds up to {gpu_total} GPU nodes, above gpuNodeCap {gpu_cap}")

    github = _github(get, fail)
    retention = get("logRetentionDays", int, 90)
    if retention not in LOG_RETENTION_DAYS:
        raise fail("logRetentionDays", f"{retention} is not a CloudWatch retention period {LOG_RETENTION_DAYS}")
    tuning_days = get("tuningResultsRetentionDays", int, 180)
    if tuning_days < 1:
        raise fail("tuningResultsRetentionDays", f"{tuning_days} must be at least 1")

    extra_tags = get("extraTags", dict, {})
    clash = set(extra_tags) & set(REQUIRED_TAG_KEYS)
    if clash:
        raise fail("extraTags", f"may not override the required tags {sorted(clash)}")

    gitops_path = get("gitopsPath", str, f"gitops/envs/{env}").strip("/")
    if not gitops_path or ".." in gitops_path.split("/"):
        raise fail("gitopsPath", f"{gitops_path!r} must be a path inside the repository")

    version = get("kubernetesVersion", str, "1.33")
    if not re.fullmatch(r"1\.\d{2}", version):
        raise fail("kubernetesVersion", f"{version!r} must be an EKS minor version such as 1.33")
    gitops_url = get("gitopsRepoUrl", str, f"https://github.com/{github.repository}.git")
    if not gitops_url.startswith("https://"):
        raise fail("gitopsRepoUrl", f"{gitops_url!r} must be an https:// URL (Argo CD reads it anonymously)")

    return StackConfig(
        environment=env,
        region=region,
        owner=owner,
        cost_center=cost_center,
        vpc_cidr=str(network),
        availability_zones=azs,
        nat_gateway_per_az=nat_per_az,
        kubernetes_version=version,
        public_access_cidrs=public_cidrs,
        system_nodes=system,
        gpu_node_groups=gpu_groups,
        gpu_node_cap=gpu_cap,
        github=github,
        gitops_repo_url=gitops_url,
        gitops_revision=get("gitopsRevision", str, "main"),
        gitops_path=gitops_path,
        log_retention_days=retention,
        tuning_results_retention_days=tuning_days,
        force_destroy_buckets=get("forceDestroyBuckets", bool, env == "dev"),
        deploy_addons=get("deployAddons", bool, True),
        extra_tags={str(k): str(v) for k, v in extra_tags.items()},
    )


_DEFAULT_GPU_GROUP: dict[str, Any] = {
    "name": "gpu-spot",
    "instanceTypes": ["g5.xlarge"],
    "capacityType": "SPOT",
    "maxSize": 2,
}
_DEFAULT_SYSTEM_GROUP: dict[str, Any] = {
    "name": "system",
    "instanceTypes": ["m7i.large"],
    "capacityType": "ON_DEMAND",
    "minSize": 2,
    "maxSize": 4,
    "desiredSize": 2,
}


def _strings(values: Sequence[Any], key: str, fail: Callable[[str, str], ConfigError]) -> list[str]:
    if any(not isinstance(v, str) or not v for v in values):
        raise fail(key, f"expected a list of non-empty strings, got {list(values)!r}")
    return list(values)


def _as_dict(value: Any, key: str, fail: Callable[[str, str], ConfigError]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(key, f"expected a mapping per node group, got {value!r}")
    return value


def _node_group(
    raw: Mapping[str, Any],
    key: str,
    fail: Callable[[str, str], ConfigError],
    *,
    gpu: bool,
    env: str,
) -> NodeGroupConfig:
    merged = {**(_DEFAULT_GPU_GROUP if gpu else _DEFAULT_SYSTEM_GROUP), **raw}
    known = {"name", "instanceTypes", "capacityType", "minSize", "maxSize", "desiredSize", "diskSizeGiB"}
    unknown = set(merged) - known
    if unknown:
        raise fail(key, f"unknown node group keys {sorted(unknown)} (known: {sorted(known)})")
    name = merged["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise fail(key, f"node group name {name!r} must be lower-case letters, digits and dashes")
    where = f"{key}[{name}]"
    types = _strings(merged["instanceTypes"], where, fail) if isinstance(merged["instanceTypes"], list) else None
    if not types:
        raise fail(where, "instanceTypes must be a non-empty list")
    if gpu and any(not _GPU_INSTANCE_RE.match(t) for t in types):
        raise fail(where, f"GPU groups need GPU instance types (g*/p* families), got {types}")
    capacity = merged["capacityType"]
    if capacity not in CAPACITY_TYPES:
        raise fail(where, f"capacityType {capacity!r} must be one of {CAPACITY_TYPES}")
    sizes = {k: merged.get(k, 0) for k in ("minSize", "maxSize", "desiredSize")}
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in sizes.values()):
        raise fail(where, f"sizes must be non-negative integers, got {sizes}")
    if gpu and (sizes["minSize"] != 0 or sizes["desiredSize"] != 0):
        raise fail(where, "GPU groups scale from zero: minSize and desiredSize must be 0")
    if not sizes["minSize"] <= sizes["desiredSize"] <= sizes["maxSize"] or sizes["maxSize"] < 1:
        raise fail(where, f"need minSize <= desiredSize <= maxSize and maxSize >= 1, got {sizes}")
    if not gpu and env == "prod" and sizes["minSize"] < 2:
        raise fail(where, "prod keeps at least 2 system nodes so add-ons survive a node loss")
    disk = merged.get("diskSizeGiB", 200 if gpu else 50)
    if not isinstance(disk, int) or isinstance(disk, bool) or not 20 <= disk <= 2000:
        raise fail(where, f"diskSizeGiB {disk!r} must be an integer between 20 and 2000")
    return NodeGroupConfig(
        name=name,
        instance_types=tuple(types),
        capacity_type=cast(CapacityType, capacity),
        min_size=sizes["minSize"],
        max_size=sizes["maxSize"],
        desired_size=sizes["desiredSize"],
        disk_size_gib=disk,
    )


def _github(get: Callable[[str, type, Any], Any], fail: Callable[[str, str], ConfigError]) -> GitHubConfig:
    repository = get("githubRepository", str, "")
    if not _REPO_RE.match(repository):
        raise fail("githubRepository", f"{repository!r} must be owner/name")
    owner_id = get("githubOwnerId", int, 0)
    repository_id = get("githubRepositoryId", int, 0)
    for key, value in (("githubOwnerId", owner_id), ("githubRepositoryId", repository_id)):
        if value <= 0:
            raise fail(key, "required: the numeric ID that GitHub's immutable `sub` claim carries")
    refs = tuple(_strings(get("githubProtectedRefs", list, ["refs/heads/main"]), "githubProtectedRefs", fail))
    if not refs:
        raise fail("githubProtectedRefs", "at least one protected ref is needed for CI to assume its role")
    for ref in refs:
        if not ref.startswith(("refs/heads/", "refs/tags/")) or any(c in ref for c in "*?[ "):
            raise fail("githubProtectedRefs", f"{ref!r} must be an exact refs/heads/... or refs/tags/... name")
    existing = get("githubOidcProviderArn", str, None)
    if existing is not None and not existing.startswith("arn:aws:iam::"):
        raise fail("githubOidcProviderArn", f"{existing!r} is not an IAM OIDC provider ARN")
    return GitHubConfig(
        repository=repository,
        owner_id=owner_id,
        repository_id=repository_id,
        protected_refs=refs,
        existing_oidc_provider_arn=existing,
    )
