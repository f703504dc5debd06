"""Carving the VPC range into per-zone private and public subnets (pure, so it is property-tested)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class SubnetPlan:
    private: tuple[str, ...]
    public: tuple[str, ...]


def plan_subnets(vpc_cidr: str, zone_count: int) -> SubnetPlan:
    """Private subnets get an eighth of the VPC each (pods take one IP each with the VPC CNI); public
    subnets only hold NAT gateways and load balancers, so they share the last eighth in small blocks."""
    if not 1 <= zone_count <= 6:
        raise ValueError(f"zone_count {zone_count} must be between 1 and 6")
    vpc = ipaddress.IPv4Network(vpc_cidr)
    if vpc.prefixlen > 20:
        raise ValueError(f"{vpc_cidr}: a /{vpc.prefixlen} VPC is too small; use /20 or wider")
    eighths = list(vpc.subnets(prefixlen_diff=3))
    public_blocks = list(eighths[-1].subnets(prefixlen_diff=3))
    return SubnetPlan(
        private=tuple(str(net) for net in eighths[:zone_count]),
        public=tuple(str(net) for net in public_blocks[:zone_count]),
    )
