"""Network: no security-group ingress from anywhere (0.0.0.0/0, ::/0) except on load-balancer ports."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from policies.rlops_guard.props import as_int, as_list, known

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ANYWHERE = ("0.0.0.0/0", "::/0")
LOAD_BALANCER_PORTS = (80, 443)


def _rules(args: ResourceValidationArgs) -> Iterator[Mapping[str, Any]]:
    """Each ingress rule normalised to {cidrs, from, to, protocol}."""
    props: Any = args.props
    if args.resource_type in (SECURITY_GROUP, DEFAULT_SECURITY_GROUP):
        for rule in as_list(known(props, "ingress")):
            if isinstance(rule, Mapping):
                cidrs = as_list(rule.get("cidrBlocks")) + as_list(rule.get("ipv6CidrBlocks"))
                yield {
                    "cidrs": cidrs,
                    "from": rule.get("fromPort"),
                    "to": rule.get("toPort"),
                    "protocol": rule.get("protocol"),
                }
    elif args.resource_type == RULE and known(props, "type") == "ingress":
        cidrs = as_list(known(props, "cidrBlocks")) + as_list(known(props, "ipv6CidrBlocks"))
        yield {
            "cidrs": cidrs,
            "from": known(props, "fromPort"),
            "to": known(props, "toPort"),
            "protocol": known(props, "protocol"),
        }
    elif args.resource_type == INGRESS_RULE:
        cidrs = as_list(known(props, "cidrIpv4")) + as_list(known(props, "cidrIpv6"))
        yield {
            "cidrs": cidrs,
            "from": known(props, "fromPort"),
            "to": known(props, "toPort"),
            "protocol": known(props, "ipProtocol"),
        }


def _allowed(rule: Mapping[str, Any], ports: set[int]) -> bool:
    if str(rule["protocol"]).lower() in ("-1", "all"):
        return False
    low, high = as_int(rule["from"]), as_int(rule["to"])
    if low is None or high is None or high < low:
        return False
    return all(port in ports for port in range(low, high + 1))


def _no_open_ingress(args: ResourceValidationArgs, report: ReportViolation) -> None:
    ports = {int(p) for p in args.get_config().get("allowedPorts", LOAD_BALANCER_PORTS)}
    for rule in _rules(args):
        open_cidrs = [c for c in rule["cidrs"] if c in ANYWHERE]
        if open_cidrs and not _allowed(rule, ports):
            report(
                f"security group rule '{args.name}': ingress from {open_cidrs} on "
                f"{rule['protocol']} {rule['from']}-{rule['to']}; only ports {sorted(ports)} may be open",
                None,
            )


def policies() -> list[ResourceValidationPolicy]:
    return [
        ResourceValidationPolicy(
            name="no-open-ingress",
            description="No security-group ingress from 0.0.0.0/0 or ::/0 except on load-balancer ports.",
            validate=_no_open_ingress,
            config_schema=PolicyConfigSchema(
                properties={
                    "allowedPorts": {
                        "type": "array",
                        "items": {"type": "integer"},
                        "default": list(LOAD_BALANCER_PORTS),
                    }
                }
            ),
        )
    ]
