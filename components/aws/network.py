"""The VPC: public and private subnets in each zone, NAT egress and an S3 gateway endpoint."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config.platform import NatMode


@dataclass(kw_only=True)
class NetworkArgs:
    cidr: str
    """IPv4 block of the VPC; /20 or larger."""
    availability_zones: Sequence[str]
    """Zones to span, one public and one private subnet each."""
    nat_gateways: NatMode
    """`per-az` keeps egress alive through a zone outage; `single` is cheaper."""
    cluster_name: str
    """EKS cluster name, for the subnet discovery tags the load balancer controller reads."""
    tags: Mapping[str, str]
    """Tags for every resource."""


def available_zones(count: int) -> list[str]:
    """The first `count` regular availability zones of the region.

    Local Zones and Wavelength Zones are opt-in, lack most instance types and services, and must
    never receive a subnet of this VPC, so only zones that need no opt-in are taken.
    """
    zones = aws.get_availability_zones(
        state="available",
        filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status",
                                                    values=["opt-in-not-required"])]).names
    if len(zones) < count:
        raise ValueError(f"availabilityZoneCount: the region offers {len(zones)} zones "
                         f"({', '.join(zones)}), fewer than the {count} configured")
    return list(zones[:count])


def subnet_cidrs(vpc_cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """Carves the VPC into small public and large private subnets.

    Pods take VPC addresses (vpc-cni), so private subnets get the bulk: with up to 3 zones each
    gets a quarter of the VPC (4 zones: an eighth). Public subnets only hold load balancers and
    NAT gateways, so they are 1/64th slices of the last quarter.
    """
    network = ipaddress.IPv4Network(vpc_cidr)
    quarters = list(network.subnets(prefixlen_diff=2))
    private = [str(q) for q in quarters[:3]]
    if zones == 4:
        private = [str(s) for q in quarters[:2] for s in q.subnets(prefixlen_diff=1)]
    public_pool = quarters[3].subnets(new_prefix=min(network.prefixlen + 6, 28))
    public = [str(next(public_pool)) for _ in range(zones)]
    return private[:zones], public


class Network(pulumi.ComponentResource):
    """A VPC laid out for EKS: workloads and data stores in private subnets only."""

    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    public_subnet_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: NetworkArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:network:Network", name, None, opts)
        if len(args.availability_zones) < 2:
            raise ValueError(f"availability_zones: need at least 2 zones, got "
                             f"{list(args.availability_zones)}")
        self._args = args
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc", cidr_block=args.cidr, enable_dns_hostnames=True,
            enable_dns_support=True, tags={**tags, "Name": f"{name}-vpc"}, opts=child)
        # A VPC's default security group allows all traffic between its members; nothing should
        # use it, so take it over and strip every rule.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=self.vpc.id,
                                     tags={**tags, "Name": f"{name}-default-deny"}, opts=child)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id,
                                      tags={**tags, "Name": f"{name}-igw"}, opts=child)

        private_cidrs, public_cidrs = subnet_cidrs(args.cidr, len(args.availability_zones))
        public_subnets = self._create_public_subnets(name, public_cidrs, igw, tags)
        private_subnets, private_tables = self._create_private_subnets(
            name, private_cidrs, public_subnets, tags)

        # Image pulls and backups go to S3; a gateway endpoint keeps them off the NAT bill.
        aws.ec2.VpcEndpoint(
            f"{name}-s3", vpc_id=self.vpc.id,
            service_name=aws.get_region_output().region.apply(lambda r: f"com.amazonaws.{r}.s3"),
            vpc_endpoint_type="Gateway", route_table_ids=[t.id for t in private_tables],
            tags={**tags, "Name": f"{name}-s3"}, opts=child)

        self.vpc_id = self.vpc.id
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private_subnets])
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public_subnets])
        self.register_outputs({
            "vpc_id": self.vpc_id,
            "private_subnet_ids": self.private_subnet_ids,
            "public_subnet_ids": self.public_subnet_ids,
        })

    def _create_public_subnets(self, name: str, cidrs: list[str], igw: aws.ec2.InternetGateway,
                               tags: dict[str, str]) -> list[aws.ec2.Subnet]:
        child = pulumi.ResourceOptions(parent=self)
        table = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=self.vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags={**tags, "Name": f"{name}-public"}, opts=child)
        subnets = []
        for zone, cidr in zip(self._args.availability_zones, cidrs, strict=True):
            subnet = aws.ec2.Subnet(
                f"{name}-public-{zone}", vpc_id=self.vpc.id, cidr_block=cidr,
                availability_zone=zone,
                # Only load balancers and NAT gateways live here and they get their own
                # addresses; nothing launched here should get a public IP by accident.
                map_public_ip_on_launch=False,
                tags={**tags, "Name": f"{name}-public-{zone}", "kubernetes.io/role/elb": "1",
                      f"kubernetes.io/cluster/{self._args.cluster_name}": "shared"},
                opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-public-{zone}", subnet_id=subnet.id,
                                          route_table_id=table.id, opts=child)
            subnets.append(subnet)
        return subnets

    def _create_private_subnets(
        self, name: str, cidrs: list[str], public_subnets: list[aws.ec2.Subnet],
        tags: dict[str, str],
    ) -> tuple[list[aws.ec2.Subnet], list[aws.ec2.RouteTable]]:
        child = pulumi.ResourceOptions(parent=self)
        zones = self._args.availability_zones
        nat_zones = zones if self._args.nat_gateways == "per-az" else zones[:1]
        nats = {}
        for zone, public in zip(nat_zones, public_subnets, strict=False):
            eip = aws.ec2.Eip(f"{name}-nat-{zone}", domain="vpc",
                              tags={**tags, "Name": f"{name}-nat-{zone}"}, opts=child)
            nats[zone] = aws.ec2.NatGateway(
                f"{name}-nat-{zone}", allocation_id=eip.id, subnet_id=public.id,
                tags={**tags, "Name": f"{name}-nat-{zone}"}, opts=child)

        subnets, tables = [], []
        for zone, cidr in zip(zones, cidrs, strict=True):
            nat = nats.get(zone, nats[nat_zones[0]])
            table = aws.ec2.RouteTable(
                f"{name}-private-rt-{zone}", vpc_id=self.vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0",
                                                    nat_gateway_id=nat.id)],
                tags={**tags, "Name": f"{name}-private-{zone}"}, opts=child)
            subnet = aws.ec2.Subnet(
                f"{name}-private-{zone}", vpc_id=self.vpc.id, cidr_block=cidr,
                availability_zone=zone, map_public_ip_on_launch=False,
                tags={**tags, "Name": f"{name}-private-{zone}",
                      "kubernetes.io/role/internal-elb": "1",
                      f"kubernetes.io/cluster/{self._args.cluster_name}": "shared"},
                opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-private-{zone}", subnet_id=subnet.id,
                                          route_table_id=table.id, opts=child)
            subnets.append(subnet)
            tables.append(table)
        return subnets, tables
