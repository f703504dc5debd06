"""Building resources by hand and running one policy of the pack over them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.rlops_guard.evaluate import InventoryResource, Violation, evaluate
from policies.rlops_guard.pack import all_policies

TAGS = {"project": "rlops", "environment": "dev", "owner": "ml-platform", "cost-center": "cc"}


def resource(typ: str, name: str, **props: Any) -> InventoryResource:
    return InventoryResource(
        resource_type=typ, name=name, inputs=props, outputs=props, urn=f"urn:pulumi:dev::rlops::{typ}::{name}"
    )


def violations(rule: str, *resources: InventoryResource, config: Mapping[str, Any] | None = None) -> list[Violation]:
    (policy,) = [p for p in all_policies() if p.name == rule]
    result = evaluate(resources, [policy], {rule: config} if config else None)
    assert all(v.policy == rule for v in result.violations)
    return list(result.violations)


def assert_caught(rule: str, name: str, *resources: InventoryResource, contains: str = "", **kw: Any) -> None:
    """The rule reports `name`, and the pack would fail."""
    found = violations(rule, *resources, **kw)
    assert found, f"{rule} missed the violation on {name}"
    assert all(v.resource_name == name for v in found), [str(v) for v in found]
    text = " | ".join(str(v) for v in found)
    assert rule in text and name in text and contains in text, text
