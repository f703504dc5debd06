"""Network: VPC over several zones, private and public subnets, NAT, VPC endpoints and flow logs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import documents
from infra.subnets import plan_subnets
from infra.tagging import tagged

# Interface endpoints that keep image pulls and IRSA token exchange off the NAT (cost and exposure).
INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "sts")


@dataclass(frozen=True)
class NetworkArgs:
    name_prefix: str
    region: str
    vpc_cidr: str
    availability_zones: Sequence[str]
    nat_gateway_per_az: bool
    flow_log_retention_days: int
    account_id: pulumi.Input[str]
    tags: Mapping[str, str]


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rlops:infra:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = args.name_prefix
        plan = plan_subnets(args.vpc_cidr, len(args.availability_zones))

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,  # interface endpoints with private DNS need both
            tags=tagged(args.tags, f"{prefix}-vpc"),
            opts=child,
        )
        # The default group allows all traffic between its members; leaving it rule-less means anything
        # launched without an explicit group is isolated.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=vpc.id,
            tags=tagged(args.tags, f"{prefix}-default-locked"),
            opts=child,
        )
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=tagged(args.tags, f"{prefix}-igw"), opts=child)

        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id, tags=tagged(args.tags, f"{prefix}-public"), opts=child
        )
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_rt.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
            opts=child,
        )

        public_subnets: list[aws.ec2.Subnet] = []
        private_subnets: list[aws.ec2.Subnet] = []
        for index, zone in enumerate(args.availability_zones):
            public = aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=vpc.id,
                cidr_block=plan.public[index],
                availability_zone=zone,
                # Only NAT gateways and load balancers live here, and both bring their own addresses.
                map_public_ip_on_launch=False,
                tags=tagged(args.tags, f"{prefix}-public-{zone}", **{"kubernetes.io/role/elb": "1"}),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone}", subnet_id=public.id, route_table_id=public_rt.id, opts=child
            )
            private = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                cidr_block=plan.private[index],
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags=tagged(args.tags, f"{prefix}-private-{zone}", **{"kubernetes.io/role/internal-elb": "1"}),
                opts=child,
            )
            public_subnets.append(public)
            private_subnets.append(private)

        nat_zones = list(args.availability_zones) if args.nat_gateway_per_az else [args.availability_zones[0]]
        nat_ids: list[pulumi.Output[str]] = []
        for index, zone in enumerate(nat_zones):
            eip = aws.ec2.Eip(
                f"{name}-nat-{zone}", domain="vpc", tags=tagged(args.tags, f"{prefix}-nat-{zone}"), opts=child
            )
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{zone}",
                allocation_id=eip.id,
                subnet_id=public_subnets[index].id,
                tags=tagged(args.tags, f"{prefix}-nat-{zone}"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )
            nat_ids.append(nat.id)

        private_rt_ids: list[pulumi.Output[str]] = []
        for index, (zone, subnet) in enumerate(zip(args.availability_zones, private_subnets, strict=True)):
            rt = aws.ec2.RouteTable(
                f"{name}-private-rt-{zone}",
                vpc_id=vpc.id,
                tags=tagged(args.tags, f"{prefix}-private-{zone}"),
                opts=child,
            )
            aws.ec2.Route(
                f"{name}-private-default-{zone}",
                route_table_id=rt.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nat_ids[index if args.nat_gateway_per_az else 0],
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}", subnet_id=subnet.id, route_table_id=rt.id, opts=child
            )
            private_rt_ids.append(rt.id)

        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=private_rt_ids,
            tags=tagged(args.tags, f"{prefix}-s3"),
            opts=child,
        )
        endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            vpc_id=vpc.id,
            description="HTTPS from inside the VPC to the interface endpoints",
            tags=tagged(args.tags, f"{prefix}-endpoints"),
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-endpoints-https",
            security_group_id=endpoint_sg.id,
            cidr_ipv4=args.vpc_cidr,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="HTTPS from the VPC",
            tags=tagged(args.tags, f"{prefix}-endpoints-https"),
            opts=child,
        )
        for service in INTERFACE_ENDPOINTS:
            aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in private_subnets],
                security_group_ids=[endpoint_sg.id],
                tags=tagged(args.tags, f"{prefix}-{service}"),
                opts=child,
            )

        self._flow_logs(name, args, vpc)

        self.vpc_id = vpc.id
        self.private_subnet_ids = [s.id for s in private_subnets]
        self.public_subnet_ids = [s.id for s in public_subnets]
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "private_subnet_ids": self.private_subnet_ids,
                "public_subnet_ids": self.public_subnet_ids,
            }
        )

    def _flow_logs(self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc) -> None:
        child = pulumi.ResourceOptions(parent=self)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            retention_in_days=args.flow_log_retention_days,
            tags=tagged(args.tags, f"{args.name_prefix}-flow-logs"),
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            assume_role_policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account: documents.to_json(documents.service_trust("vpc-flow-logs.amazonaws.com", account))
            ),
            tags=tagged(args.tags, f"{args.name_prefix}-flow-logs"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=log_group.arn.apply(
                lambda arn: documents.to_json(
                    documents.document(
                        documents.allow(
                            "WriteFlowLogs",
                            ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                            [arn, f"{arn}:*"],
                        )
                    )
                )
            ),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=tagged(args.tags, f"{args.name_prefix}-flow-log"),
            opts=child,
        )
