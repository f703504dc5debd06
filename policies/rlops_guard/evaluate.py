"""Run the pack's validate functions over a list of resources, offline, the way the engine would.

The Pulumi CLI is what normally feeds resources to a pack; this lets tests (and anyone without the CLI)
feed hand-built resources or everything a mocked program registered, and read the violations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.rlops_guard.pack import ENFORCEMENT, all_policies


@dataclass(frozen=True)
class InventoryResource:
    """One registered resource: resource policies see its inputs, stack policies its outputs."""

    resource_type: str
    name: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any] | None = None
    urn: str = ""
    provider: PolicyProviderResource | None = None
    # property name -> URNs of the resources that property's value came from (as the engine records).
    property_dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @property
    def resolved_urn(self) -> str:
        return self.urn or f"urn:pulumi:stack::project::{self.resource_type}::{self.name}"


@dataclass(frozen=True)
class Violation:
    policy: str
    message: str
    enforcement: EnforcementLevel
    resource_name: str | None = None
    resource_type: str | None = None

    def __str__(self) -> str:
        where = f"{self.resource_type} '{self.resource_name}'" if self.resource_name else "stack"
        return f"[{self.policy}] {where}: {self.message}"


@dataclass(frozen=True)
class PackResult:
    violations: tuple[Violation, ...]

    @property
    def passed(self) -> bool:
        """False when any mandatory policy was violated: the CLI would fail the preview or update."""
        return not any(v.enforcement == EnforcementLevel.MANDATORY for v in self.violations)

    def report(self) -> str:
        return "\n".join(str(v) for v in self.violations) or "no violations"


def policy_config(policy: Policy, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Schema defaults overlaid with `overrides`, as the CLI computes a policy's configuration."""
    config: dict[str, Any] = {}
    if policy.config_schema is not None:
        for key, schema in policy.config_schema.properties.items():
            if "default" in schema:
                config[key] = schema["default"]
    config.update(overrides or {})
    return config


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def _stack_resources(resources: Sequence[InventoryResource]) -> list[PolicyResource]:
    by_urn: dict[str, PolicyResource] = {}
    for r in resources:
        by_urn[r.resolved_urn] = PolicyResource(
            r.resource_type,
            dict(r.outputs if r.outputs is not None else r.inputs),
            r.resolved_urn,
            r.name,
            _options(),
            r.provider,
            None,
            [],
            {},
        )
    for r in resources:
        target = by_urn[r.resolved_urn]
        for prop, urns in r.property_dependencies.items():
            deps = [by_urn[u] for u in urns if u in by_urn]
            target.property_dependencies[prop] = deps
            target.dependencies.extend(d for d in deps if d not in target.dependencies)
    return list(by_urn.values())


def evaluate(
    resources: Sequence[InventoryResource],
    policies: Sequence[Policy] | None = None,
    config: Mapping[str, Mapping[str, Any]] | None = None,
) -> PackResult:
    """Every violation the pack reports for `resources`; `config` maps policy name to overrides."""
    chosen = list(policies) if policies is not None else all_policies()
    names = {r.resolved_urn: r for r in resources}
    violations: list[Violation] = []
    for policy in chosen:
        level = policy.enforcement_level or ENFORCEMENT
        if level == EnforcementLevel.DISABLED:
            continue
        settings = policy_config(policy, (config or {}).get(policy.name))
        if isinstance(policy, ResourceValidationPolicy):
            for resource in resources:

                def report(
                    message: str,
                    _urn: str | None = None,
                    r: InventoryResource = resource,
                    name: str = policy.name,
                    lvl: EnforcementLevel = level,
                ) -> None:
                    violations.append(Violation(name, message, lvl, r.name, r.resource_type))

                args = ResourceValidationArgs(
                    resource.resource_type,
                    dict(resource.inputs),
                    resource.resolved_urn,
                    resource.name,
                    _options(),
                    resource.provider,
                    settings,
                )
                _sync(policy.validate(args, report), policy)
        elif isinstance(policy, StackValidationPolicy):

            def report_stack(
                message: str,
                urn: str | None = None,
                name: str = policy.name,
                lvl: EnforcementLevel = level,
            ) -> None:
                hit = names.get(urn or "")
                violations.append(
                    Violation(
                        name,
                        message,
                        lvl,
                        hit.name if hit else None,
                        hit.resource_type if hit else None,
                    )
                )

            stack_args = StackValidationArgs(_stack_resources(resources), settings)
            _sync(policy.validate(stack_args, report_stack), policy)
    return PackResult(tuple(violations))


def _sync(result: object, policy: Policy) -> None:
    # Every policy in this pack is synchronous; an awaitable would mean a check silently never ran.
    if result is not None:
        raise TypeError(f"policy {policy.name} returned {type(result).__name__}; expected a synchronous check")
