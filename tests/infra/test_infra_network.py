"""Network component under mocks: zones, subnets, NAT, endpoints, flow logs, locked default group."""

from __future__ import annotations

import json

import pytest
from pulumi_harness import RecordingMocks, run_with_mocks

from infra.network import INTERFACE_ENDPOINTS, Network, NetworkArgs

TAGS = {"project": "rlops", "environment": "dev", "owner": "o", "cost-center": "c"}


def _network(zones: tuple[str, ...], per_az: bool) -> RecordingMocks:
    def program() -> None:
        Network(
            "net",
            NetworkArgs(
                name_prefix="rlops-test",
                region="us-east-1",
                vpc_cidr="10.50.0.0/16",
                availability_zones=zones,
                nat_gateway_per_az=per_az,
                flow_log_retention_days=30,
                account_id="123456789012",
                tags=TAGS,
            ),
        )

    return run_with_mocks(program)


@pytest.mark.parametrize(
    ("zones", "per_az", "nats"),
    [(("us-east-1a", "us-east-1b"), False, 1), (("us-east-1a", "us-east-1b", "us-east-1c"), True, 3)],
)
def test_subnets_per_zone_and_nat_gateways(zones: tuple[str, ...], per_az: bool, nats: int) -> None:
    mocks = _network(zones, per_az)
    subnets = mocks.of_type("aws:ec2/subnet:Subnet")
    private = [s for s in subnets if "kubernetes.io/role/internal-elb" in s.inputs["tags"]]
    public = [s for s in subnets if "kubernetes.io/role/elb" in s.inputs["tags"]]
    assert sorted(s.inputs["availabilityZone"] for s in private) == sorted(zones)
    assert sorted(s.inputs["availabilityZone"] for s in public) == sorted(zones)
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)
    assert len(mocks.of_type("aws:ec2/natGateway:NatGateway")) == nats
    nat_routes = [r for r in mocks.of_type("aws:ec2/route:Route") if "natGatewayId" in r.inputs]
    assert len(nat_routes) == len(zones)
    assert len({r.inputs["natGatewayId"] for r in nat_routes}) == nats


def test_s3_gateway_and_ecr_interface_endpoints_stay_inside_the_vpc() -> None:
    mocks = _network(("us-east-1a", "us-east-1b"), False)
    endpoints = {e.inputs["serviceName"]: e.inputs for e in mocks.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert endpoints["com.amazonaws.us-east-1.s3"]["vpcEndpointType"] == "Gateway"
    assert len(endpoints["com.amazonaws.us-east-1.s3"]["routeTableIds"]) == 2
    for service in INTERFACE_ENDPOINTS:
        endpoint = endpoints[f"com.amazonaws.us-east-1.{service}"]
        assert endpoint["vpcEndpointType"] == "Interface"
        assert endpoint["privateDnsEnabled"] is True
    (rule,) = mocks.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert (rule.inputs["cidrIpv4"], rule.inputs["fromPort"], rule.inputs["toPort"]) == ("10.50.0.0/16", 443, 443)


def test_flow_logs_capture_all_traffic_with_a_role_scoped_to_the_log_group() -> None:
    mocks = _network(("us-east-1a", "us-east-1b"), False)
    (flow,) = mocks.of_type("aws:ec2/flowLog:FlowLog")
    (group,) = mocks.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert flow.inputs["trafficType"] == "ALL"
    assert flow.inputs["logDestination"] == group.outputs["arn"]
    assert group.inputs["retentionInDays"] == 30
    (policy,) = mocks.of_type("aws:iam/rolePolicy:RolePolicy")
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    assert statement["Resource"] == sorted([group.outputs["arn"], f"{group.outputs['arn']}:*"])
    (role,) = mocks.of_type("aws:iam/role:Role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_default_security_group_is_emptied_and_vpc_resolves_dns() -> None:
    mocks = _network(("us-east-1a", "us-east-1b"), False)
    (default,) = mocks.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert "ingress" not in default.inputs and "egress" not in default.inputs
    (vpc,) = mocks.of_type("aws:ec2/vpc:Vpc")
    assert vpc.inputs["enableDnsHostnames"] is True and vpc.inputs["enableDnsSupport"] is True
    assert all("rlops:infra:Network" in u.split("::")[2] for u in mocks.urns)
