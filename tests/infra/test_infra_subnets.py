"""The subnet plan: inside the VPC, never overlapping, one private and one public subnet per zone."""

from __future__ import annotations

import ipaddress
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.subnets import plan_subnets


@given(
    base=st.integers(min_value=0, max_value=2**32 - 1),
    prefix=st.integers(min_value=16, max_value=20),
    zones=st.integers(min_value=1, max_value=6),
)
def test_subnets_fit_the_vpc_and_never_overlap(base: int, prefix: int, zones: int) -> None:
    vpc = ipaddress.IPv4Network((base, prefix), strict=False)
    plan = plan_subnets(str(vpc), zones)
    nets = [ipaddress.IPv4Network(c) for c in plan.private + plan.public]
    assert len(plan.private) == len(plan.public) == zones
    assert all(net.subnet_of(vpc) for net in nets)
    assert not any(a.overlaps(b) for a, b in itertools.combinations(nets, 2))
    # Pods take VPC addresses: private subnets must be much larger than the public ones.
    assert all(ipaddress.IPv4Network(p).num_addresses == vpc.num_addresses // 8 for p in plan.private)


def test_a_16_gives_8k_addresses_per_private_subnet() -> None:
    plan = plan_subnets("10.40.0.0/16", 3)
    assert plan.private == ("10.40.0.0/19", "10.40.32.0/19", "10.40.64.0/19")
    assert plan.public == ("10.40.224.0/22", "10.40.228.0/22", "10.40.232.0/22")


@pytest.mark.parametrize(
    ("cidr", "zones", "message"), [("10.0.0.0/24", 2, "too small"), ("10.0.0.0/16", 7, "zone_count")]
)
def test_impossible_plans_are_refused(cidr: str, zones: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_subnets(cidr, zones)
