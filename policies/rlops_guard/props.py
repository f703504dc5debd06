"""Reading resource properties the way the engine hands them over (camelCase, maybe unknown at preview)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy.proxy import UnknownValueError


def known(props: Mapping[str, Any], key: str) -> Any:
    """The value of `key`, or None while it is still unknown (computed during a preview)."""
    try:
        return props.get(key)
    except UnknownValueError:
        return None


def dig(props: Any, *path: str) -> Any:
    """Follow nested keys; None if any step is missing, not a mapping, or unknown."""
    value = props
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = known(value, key)
    return value


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def find_values(obj: Any, key: str) -> Iterator[Any]:
    """Every value stored under `key` anywhere inside nested mappings and lists."""
    if isinstance(obj, Mapping):
        for k in obj:
            try:
                value = obj[k]
            except UnknownValueError:
                continue
            if k == key:
                yield value
            yield from find_values(value, key)
    elif isinstance(obj, list | tuple):
        for item in obj:
            yield from find_values(item, key)


class DocumentError(ValueError):
    """A policy document is present but not valid JSON."""


def parse_document(value: Any) -> dict[str, Any] | None:
    """An IAM/resource policy document from a JSON string or a mapping; None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise DocumentError(f"policy document is not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise DocumentError("policy document must be a JSON object")
        return parsed
    raise DocumentError(f"policy document has unexpected type {type(value).__name__}")


def statements(document: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not document:
        return []
    return [dict(s) for s in as_list(document.get("Statement")) if isinstance(s, Mapping)]


def as_int(value: Any) -> int | None:
    """Numbers cross the engine as protobuf doubles (4 arrives as 4.0); None if not a whole number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if float(value).is_integer() else None
