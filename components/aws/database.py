"""Postgres on RDS: private, encrypted, TLS-only, reachable only from the cluster."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.config.platform import DatabaseSettings
from components.endpoints import POSTGRES_PORT, DatabaseEndpoint


@dataclass(frozen=True, kw_only=True)
class DatabaseArgs:
    identifier: str
    """RDS instance identifier (unique per account and region)."""
    settings: DatabaseSettings
    """Class, version, storage, redundancy and backups from the stack config."""
    vpc_id: pulumi.Input[str]
    """VPC of the database."""
    subnet_ids: pulumi.Input[Sequence[str]]
    """Private subnets; the instance is never publicly accessible."""
    client_security_group_id: pulumi.Input[str]
    """The only security group admitted on 5432 (the cluster's, which its pods use)."""
    tags: Mapping[str, str]
    """Tags for every resource."""
    protect: bool
    """Refuse to delete or replace the instance through Pulumi."""


class Database(pulumi.ComponentResource):
    """An RDS Postgres instance and everything that fences it in."""

    endpoint: DatabaseEndpoint

    def __init__(self, name: str, args: DatabaseArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:database:Database", name, None, opts)
        d = args.settings
        if d.max_allocated_storage_gb < d.allocated_storage_gb:
            raise ValueError(f"max_allocated_storage_gb ({d.max_allocated_storage_gb}) is "
                             f"below allocated_storage_gb ({d.allocated_storage_gb})")
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        major = d.engine_version.split(".")[0]

        subnets = aws.rds.SubnetGroup(f"{name}-subnets", subnet_ids=args.subnet_ids, tags=tags,
                                      opts=child)
        # No egress rules: the database never opens connections of its own.
        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg", vpc_id=args.vpc_id,
            description="Postgres: 5432 from the EKS cluster only",
            ingress=[aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp", from_port=POSTGRES_PORT, to_port=POSTGRES_PORT,
                security_groups=[args.client_security_group_id],
                description="Postgres from cluster pods and nodes")],
            tags={**tags, "Name": f"{name}-postgres"}, opts=child)
        parameters = aws.rds.ParameterGroup(
            f"{name}-params", family=f"postgres{major}",
            description="TLS-only Postgres with slow-query logging",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1"),
                aws.rds.ParameterGroupParameterArgs(name="log_min_duration_statement",
                                                    value="1000"),
                aws.rds.ParameterGroupParameterArgs(name="log_lock_waits", value="1"),
            ],
            tags=tags, opts=child)
        # Alphanumeric only: the password ends up in connection URLs and shell-quoted scripts.
        password = random.RandomPassword(f"{name}-password", length=40, special=False,
                                         opts=child)

        self.instance = aws.rds.Instance(
            f"{name}-postgres",
            identifier=args.identifier,
            engine="postgres",
            engine_version=d.engine_version,
            auto_minor_version_upgrade=True,
            instance_class=d.instance_class,
            storage_type="gp3",
            allocated_storage=d.allocated_storage_gb,
            max_allocated_storage=d.max_allocated_storage_gb,
            storage_encrypted=True,
            # A snapshot brings its own data and master user; the password is set after.
            snapshot_identifier=d.restore_snapshot,
            db_name=None if d.restore_snapshot else d.name,
            username=d.username,
            password=password.result,
            iam_database_authentication_enabled=True,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[security_group.id],
            parameter_group_name=parameters.name,
            publicly_accessible=False,
            multi_az=d.multi_az,
            backup_retention_period=d.backup_retention_days,
            backup_window="03:00-04:00",
            maintenance_window="sun:04:30-sun:05:30",
            copy_tags_to_snapshot=True,
            deletion_protection=d.deletion_protection,
            skip_final_snapshot=not d.final_snapshot,
            final_snapshot_identifier=f"{args.identifier}-final" if d.final_snapshot else None,
            performance_insights_enabled=d.performance_insights,
            performance_insights_retention_period=7 if d.performance_insights else None,
            enabled_cloudwatch_logs_exports=["postgresql", "upgrade"],
            # Changes wait for the maintenance window instead of restarting the database now.
            apply_immediately=False,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        # After a restore, the restored instance serves (same subnets, security group,
        # parameter group and credentials, made by `agent-service restore rds`); the stack's own
        # stays as it is, protected, for the record and as a way back.
        served = aws.rds.get_instance_output(db_instance_identifier=d.restored_instance) \
            if d.restored_instance else None
        self.served_arns: list[pulumi.Output[str]] = [self.instance.arn] + (
            [served.db_instance_arn] if served else [])
        self.endpoint = DatabaseEndpoint(
            host=served.address if served else self.instance.address,
            port=served.port if served else self.instance.port, database=d.name,
            user=d.username, password=pulumi.Output.secret(password.result),
            sslmode="require")
        self.register_outputs({"host": self.endpoint.host, "port": self.endpoint.port})
