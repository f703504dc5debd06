"""Tags every taggable resource carries; the policy pack's `required-tags` rule checks the same keys."""

from __future__ import annotations

from collections.abc import Mapping


def tagged(base: Mapping[str, str], name: str, **extra: str) -> dict[str, str]:
    """Base tags plus a `Name` (what the AWS console shows) and any resource-specific extras."""
    return {**base, "Name": name, **extra}
