"""Required tags (project, environment, owner, cost-center) on every taggable resource.

Whether a type is taggable comes from the provider SDK itself (does its constructor take `tags`?), so new
resource types are covered without a hand-kept list.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from policies.rlops_guard.props import dig, known

REQUIRED_TAGS = ("project", "environment", "owner", "cost-center")
_SDK_MODULES = {"aws": "pulumi_aws", "eks": "pulumi_eks"}


@functools.cache
def is_taggable(resource_type: str) -> bool:
    """True when the SDK class behind `pkg:module/name:Class` accepts a `tags` argument."""
    parts = resource_type.split(":")
    if len(parts) != 3 or parts[0] not in _SDK_MODULES:
        return False
    package, module, class_name = parts
    module_name = module.split("/")[0]
    path = _SDK_MODULES[package] if module_name == "index" else f"{_SDK_MODULES[package]}.{module_name}"
    try:
        cls = getattr(importlib.import_module(path), class_name)
    except (ImportError, AttributeError):
        return False
    init = getattr(cls, "_internal_init", None)
    return init is not None and "tags" in inspect.signature(init).parameters


def _effective_tags(args: ResourceValidationArgs) -> dict[str, Any]:
    tags: dict[str, Any] = {}
    provider = args.provider
    if provider is not None:
        # Tags set once on the AWS provider (defaultTags) reach every resource it manages. Provider
        # settings that are objects arrive JSON-encoded, as the SDK sends them to the engine.
        default_tags = known(provider.props, "defaultTags")
        if isinstance(default_tags, str):
            try:
                default_tags = json.loads(default_tags)
            except json.JSONDecodeError:
                default_tags = None
        defaults = dig(default_tags, "tags")
        if isinstance(defaults, Mapping):
            tags.update(defaults)
    own = known(args.props, "tags")
    if isinstance(own, Mapping):
        tags.update(own)
    return tags


def _required_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not is_taggable(args.resource_type):
        return
    required = list(args.get_config().get("requiredTags", REQUIRED_TAGS))
    tags = _effective_tags(args)
    missing = [key for key in required if not str(tags.get(key) or "").strip()]
    if missing:
        report(f"'{args.name}': missing required tags {missing}", None)


def policies() -> list[ResourceValidationPolicy]:
    return [
        ResourceValidationPolicy(
            name="required-tags",
            description="Every taggable resource carries project, environment, owner and cost-center tags.",
            validate=_required_tags,
            config_schema=PolicyConfigSchema(
                properties={
                    "requiredTags": {"type": "array", "items": {"type": "string"}, "default": list(REQUIRED_TAGS)}
                }
            ),
        )
    ]
