"""Valkey (Redis-compatible) on ElastiCache: private, TLS in transit, encrypted at rest, AUTH."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.config.platform import CacheSettings
from components.endpoints import REDIS_PORT, CacheEndpoint


@dataclass(frozen=True, kw_only=True)
class CacheArgs:
    replication_group_id: str
    """ElastiCache replication group id (at most 40 characters)."""
    settings: CacheSettings
    """Node type, version, node count and snapshots from the stack config."""
    vpc_id: pulumi.Input[str]
    """VPC of the cache."""
    subnet_ids: pulumi.Input[Sequence[str]]
    """Private subnets."""
    client_security_group_id: pulumi.Input[str]
    """The only security group admitted on 6379 (the cluster's)."""
    tags: Mapping[str, str]
    """Tags for every resource."""
    protect: bool
    """Refuse to delete or replace the replication group through Pulumi."""


class Cache(pulumi.ComponentResource):
    """An ElastiCache Valkey replication group and everything that fences it in."""

    endpoint: CacheEndpoint

    def __init__(self, name: str, args: CacheArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:cache:Cache", name, None, opts)
        if len(args.replication_group_id) > 40:
            raise ValueError(f"replication_group_id {args.replication_group_id!r} is longer "
                             "than ElastiCache's 40 characters")
        c = args.settings
        if c.nodes < 1:
            raise ValueError(f"nodes: need at least 1, got {c.nodes}")
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        redundant = c.nodes > 1

        subnets = aws.elasticache.SubnetGroup(
            f"{name}-subnets", name=f"{args.replication_group_id}-subnets",
            subnet_ids=args.subnet_ids, tags=tags, opts=child)
        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg", vpc_id=args.vpc_id,
            description="Valkey: 6379 from the EKS cluster only",
            ingress=[aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp", from_port=REDIS_PORT, to_port=REDIS_PORT,
                security_groups=[args.client_security_group_id],
                description="Valkey from cluster pods and nodes")],
            tags={**tags, "Name": f"{name}-valkey"}, opts=child)
        # ElastiCache AUTH tokens allow only printable characters minus a few; alphanumeric
        # is always accepted and safe inside URLs.
        token = random.RandomPassword(f"{name}-auth-token", length=48, special=False, opts=child)

        self.replication_group = aws.elasticache.ReplicationGroup(
            f"{name}-valkey",
            replication_group_id=args.replication_group_id,
            description="agent-platform queue, rate limits and LLM response cache",
            engine="valkey",
            engine_version=c.engine_version,
            node_type=c.node_type,
            num_cache_clusters=c.nodes,
            port=REDIS_PORT,
            automatic_failover_enabled=redundant,
            multi_az_enabled=redundant,
            at_rest_encryption_enabled=True,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=token.result,
            subnet_group_name=subnets.name,
            security_group_ids=[security_group.id],
            snapshot_retention_limit=c.snapshot_retention_days,
            snapshot_window="02:00-03:00" if c.snapshot_retention_days else None,
            maintenance_window="sun:05:30-sun:06:30",
            auto_minor_version_upgrade=True,
            apply_immediately=False,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.endpoint = CacheEndpoint(
            host=self.replication_group.primary_endpoint_address,
            port=self.replication_group.port.apply(lambda p: p or REDIS_PORT),
            password=pulumi.Output.secret(token.result), tls=True)
        self.register_outputs({"host": self.endpoint.host})
