"""Validating rendered Kubernetes objects against official schemas that let unknown keys through."""

from __future__ import annotations

from typing import Any


def closed(schema: Any) -> Any:
    """The schema with `additionalProperties: false` wherever properties are listed and nothing else is said, so
    that a misspelt key fails (the official schemas, like Hera's models, let unknown keys through)."""
    if isinstance(schema, dict):
        result = {k: closed(v) for k, v in schema.items()}
        open_by_design = result.get("x-kubernetes-preserve-unknown-fields") is True
        if "properties" in result and "additionalProperties" not in result and not open_by_design:
            result["additionalProperties"] = False
        return result
    if isinstance(schema, list):
        return [closed(v) for v in schema]
    return schema
