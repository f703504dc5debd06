"""Security-group ingress, IAM wildcard and OIDC trust policies: compliant passes, violations are caught."""

from __future__ import annotations

import json
from typing import Any

import pytest
from guard_cases import assert_caught, resource, violations

SG = "aws:ec2/securityGroup:SecurityGroup"
RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ROLE = "aws:iam/role:Role"
EKS_HOST = "oidc.eks.us-east-1.amazonaws.com/id/ABC"
GH_HOST = "token.actions.githubusercontent.com"


@pytest.mark.parametrize(
    ("typ", "props"),
    [
        (INGRESS, {"cidrIpv4": "0.0.0.0/0", "fromPort": 443, "toPort": 443, "ipProtocol": "tcp"}),
        (INGRESS, {"cidrIpv4": "10.0.0.0/16", "fromPort": 0, "toPort": 65535, "ipProtocol": "-1"}),
        (RULE, {"type": "ingress", "cidrBlocks": ["0.0.0.0/0"], "fromPort": 80.0, "toPort": 80.0, "protocol": "tcp"}),
        (RULE, {"type": "egress", "cidrBlocks": ["0.0.0.0/0"], "fromPort": 0, "toPort": 0, "protocol": "-1"}),
        (SG, {"ingress": [{"cidrBlocks": ["0.0.0.0/0"], "fromPort": 80, "toPort": 80, "protocol": "tcp"}]}),
    ],
)
def test_open_ingress_on_load_balancer_ports_or_private_ranges_passes(typ: str, props: dict[str, Any]) -> None:
    assert violations("no-open-ingress", resource(typ, "sg", **props)) == []


@pytest.mark.parametrize(
    ("typ", "props", "contains"),
    [
        (INGRESS, {"cidrIpv4": "0.0.0.0/0", "fromPort": 22, "toPort": 22, "ipProtocol": "tcp"}, "22-22"),
        (INGRESS, {"cidrIpv6": "::/0", "fromPort": 443, "toPort": 443, "ipProtocol": "-1"}, "::/0"),
        (INGRESS, {"cidrIpv4": "0.0.0.0/0", "fromPort": 80, "toPort": 443, "ipProtocol": "tcp"}, "80-443"),
        (
            RULE,
            {"type": "ingress", "cidrBlocks": ["0.0.0.0/0"], "fromPort": 5432, "toPort": 5432, "protocol": "tcp"},
            "5432",
        ),
        (SG, {"ingress": [{"ipv6CidrBlocks": ["::/0"], "fromPort": 0, "toPort": 0, "protocol": "-1"}]}, "::/0"),
    ],
)
def test_open_ingress_elsewhere_is_caught(typ: str, props: dict[str, Any], contains: str) -> None:
    assert_caught("no-open-ingress", "sg", resource(typ, "sg", **props), contains=contains)


def test_allowed_ports_are_configurable() -> None:
    rule = resource(INGRESS, "sg", cidrIpv4="0.0.0.0/0", fromPort=8443, toPort=8443, ipProtocol="tcp")
    assert violations("no-open-ingress", rule, config={"allowedPorts": [8443]}) == []
    assert_caught("no-open-ingress", "sg", rule)


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.mark.parametrize(
    ("typ", "props"),
    [
        ("aws:iam/rolePolicy:RolePolicy", {"policy": _doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})}),
        ("aws:iam/policy:Policy", {"policy": _doc({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"})}),
        ("aws:iam/policy:Policy", {"policy": _doc({"Effect": "Deny", "Action": "*", "Resource": "*"})}),
        ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", {"policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
    ],
)
def test_scoped_iam_passes(typ: str, props: dict[str, Any]) -> None:
    assert violations("no-iam-wildcard-admin", resource(typ, "p", **props)) == []


@pytest.mark.parametrize(
    ("typ", "props", "contains"),
    [
        ("aws:iam/rolePolicy:RolePolicy", {"policy": _doc({"Action": ["*"], "Resource": ["*"]})}, "Action '*'"),
        (
            "aws:iam/policy:Policy",
            {"policy": {"Statement": [{"Effect": "Allow", "Action": "*:*", "Resource": "*"}]}},
            "*",
        ),
        (
            "aws:iam/userPolicy:UserPolicy",
            {"policy": _doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})},
            "NotAction",
        ),
        (
            ROLE,
            {"inlinePolicies": [{"name": "x", "policy": _doc({"Effect": "Allow", "Action": "*", "Resource": "*"})}]},
            "*",
        ),
        (
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
            "AdministratorAccess",
        ),
        (ROLE, {"managedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"]}, "AdministratorAccess"),
        ("aws:iam/policy:Policy", {"policy": "[1, 2"}, "not valid JSON"),
    ],
)
def test_admin_grants_are_caught(typ: str, props: dict[str, Any], contains: str) -> None:
    assert_caught("no-iam-wildcard-admin", "p", resource(typ, "p", **props), contains=contains)


def _trust(host: str, condition: dict[str, Any]) -> str:
    return _doc(
        {
            "Effect": "Allow",
            "Principal": {"Federated": f"arn:aws:iam::1:oidc-provider/{host}"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": condition,
        }
    )


def _pinned(host: str, subjects: list[str]) -> dict[str, Any]:
    return {"StringEquals": {f"{host}:aud": "sts.amazonaws.com", f"{host}:sub": subjects}}


@pytest.mark.parametrize(
    "policy",
    [
        _trust(EKS_HOST, _pinned(EKS_HOST, ["system:serviceaccount:argo:argo-workflow"])),
        _trust(GH_HOST, _pinned(GH_HOST, ["repo:o/r:ref:refs/heads/main", "repo:o@1/r@2:ref:refs/heads/main"])),
        _trust(GH_HOST, _pinned(GH_HOST, ["repo:o/r:environment:prod"])),
        _doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}),
    ],
)
def test_pinned_trust_passes(policy: str) -> None:
    assert violations("oidc-trust-pinned", resource(ROLE, "r", assumeRolePolicy=policy)) == []


@pytest.mark.parametrize(
    ("condition", "host", "contains"),
    [
        (
            {"StringLike": {f"{GH_HOST}:sub": "repo:o/r:*", f"{GH_HOST}:aud": "sts.amazonaws.com"}},
            GH_HOST,
            "StringLike",
        ),
        (_pinned(GH_HOST, ["repo:o/r:*"]), GH_HOST, "not exact"),
        (_pinned(GH_HOST, ["repo:o/r:pull_request"]), GH_HOST, "not a protected ref"),
        (_pinned(EKS_HOST, ["system:serviceaccount:argo:*"]), EKS_HOST, "not exact"),
        (_pinned(EKS_HOST, ["argo-workflow"]), EKS_HOST, "system:serviceaccount"),
        (
            {"StringEquals": {f"{EKS_HOST}:aud": "sts.amazonaws.com"}},
            EKS_HOST,
            "no StringEquals condition on the `sub`",
        ),
        ({"StringEquals": {f"{EKS_HOST}:sub": "system:serviceaccount:a:b"}}, EKS_HOST, "`aud`"),
        ({}, GH_HOST, "no StringEquals condition on the `sub`"),
    ],
)
def test_loose_trust_is_caught(condition: dict[str, Any], host: str, contains: str) -> None:
    role = resource(ROLE, "r", assumeRolePolicy=_trust(host, condition))
    assert_caught("oidc-trust-pinned", "r", role, contains=contains)
