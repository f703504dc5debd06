"""IAM policy documents as plain data, so their shape is tested without Pulumi."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

Document = dict[str, Any]
STS_AUDIENCE = "sts.amazonaws.com"


def document(*statements: Mapping[str, Any]) -> Document:
    return {"Version": "2012-10-17", "Statement": [dict(s) for s in statements]}


def allow(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[str],
    condition: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(set(actions)),
        "Resource": sorted(set(resources)),
    }
    if condition:
        statement["Condition"] = dict(condition)
    return statement


def service_trust(service: str, source_account: str | None = None) -> Document:
    """Trust for an AWS service principal; the source-account condition stops confused-deputy use."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if source_account is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return document(statement)


def web_identity_trust(provider_arn: str, issuer: str, subjects: Sequence[str]) -> Document:
    """Trust for an OIDC identity (IRSA or GitHub Actions) pinned to exact subjects with StringEquals.

    StringLike with wildcards would let any branch, fork or service account in; the policy pack's
    `oidc-trust-pinned` rule rejects that.
    """
    if not subjects:
        raise ValueError(f"web identity trust for {provider_arn} needs at least one subject")
    host = issuer.removeprefix("https://")
    return document(
        {
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{host}:aud": STS_AUDIENCE,
                    f"{host}:sub": sorted(subjects),
                }
            },
        }
    )


def tls_only_statement(bucket_arn: str) -> dict[str, Any]:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def to_json(doc: Document) -> str:
    return json.dumps(doc, sort_keys=True)
