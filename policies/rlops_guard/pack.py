"""The pack's contents: every policy, enforced as mandatory (a violation fails preview and up)."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Policy

from policies.rlops_guard import ecr, eks, gpu, helm, iam, ingress, s3, tags, trust

PACK_NAME = "rlops-guard"
ENFORCEMENT = EnforcementLevel.MANDATORY


def all_policies() -> list[Policy]:
    policies: list[Policy] = [
        *s3.policies(),
        *ecr.policies(),
        *eks.policies(),
        *ingress.policies(),
        *iam.policies(),
        *trust.policies(),
        *gpu.policies(),
        *tags.policies(),
        *helm.policies(),
    ]
    names = [p.name for p in policies]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"policy names must be unique in {PACK_NAME}: {duplicates}")
    return policies
