"""Priced items the program creates as AWS resources (see cost_model.py)."""

from __future__ import annotations

from cost_model import Priced, Pricer, of_type
from support_calendar import calendar


def eks(p: Pricer, resources: list[Priced]) -> None:
    known = calendar()
    for cluster in of_type(resources, "aws:eks/cluster:Cluster"):
        version = str(cluster.props.get("version", ""))
        support = known.get(version)
        extended = (support is not None and p.today > support.standard_ends
                    and (cluster.props.get("upgradePolicy") or {}).get("supportType")
                    != "STANDARD")
        tier = "extended" if extended else "standard"
        p.add(f"EKS control plane {version} ({tier} support)", p.hours, "cluster-hours",
              float(p.p["eks_cluster_hour"][tier]),
              note="" if support else f"{version} is not in the support calendar")


def network(p: Pricer, resources: list[Priced]) -> None:
    nats = len(list(of_type(resources, "aws:ec2/natGateway:NatGateway")))
    p.add("NAT gateways", nats * p.hours, "gateway-hours", p.price("nat_gateway_hour"))
    if nats:
        p.add("NAT data processed", p.usage["nat_processed_gb_month"], "GB",
              p.price("nat_gateway_gb"), "assumption", "nat_processed_gb_month")
    eips = len(list(of_type(resources, "aws:ec2/eip:Eip")))
    p.add("Public IPv4 addresses (NAT)", eips * p.hours, "address-hours",
          p.price("public_ipv4_hour"))
    interfaces = [e for e in of_type(resources, "aws:ec2/vpcEndpoint:VpcEndpoint")
                  if e.props.get("vpcEndpointType") == "Interface"]
    p.add("VPC interface endpoints", len(interfaces) * p.hours, "endpoint-hours",
          p.price("interface_endpoint_hour"))
    if resources:
        p.add("Data transfer out to the internet", p.usage["internet_transfer_out_gb_month"],
              "GB", p.price("internet_transfer_out_gb"), "assumption",
              "internet_transfer_out_gb_month")


def nodes(p: Pricer, resources: list[Priced]) -> None:
    volume_gb = 0.0
    for template in of_type(resources, "aws:ec2/launchTemplate:LaunchTemplate"):
        for mapping in template.props.get("blockDeviceMappings") or []:
            volume_gb += float((mapping.get("ebs") or {}).get("volumeSize") or 0)
    for group in of_type(resources, "aws:eks/nodeGroup:NodeGroup"):
        scaling = group.props.get("scalingConfig") or {}
        count = int(scaling.get("desiredSize") or scaling.get("minSize") or 0)
        instance_type = (group.props.get("instanceTypes") or ["?"])[0]
        price = p.price("ec2_hour", instance_type)
        spot = group.props.get("capacityType") == "SPOT"
        note = f"desired size; the autoscaler may run up to {scaling.get('maxSize')}"
        if spot:
            discount = p.usage["spot_discount"]
            p.add(f"Nodes: {count} x {instance_type} spot", count * p.hours, "instance-hours",
                  round(price * (1 - discount), 5), "assumption",
                  f"{note}; spot at {discount:.0%} below on-demand (spot_discount)")
        else:
            p.add(f"Nodes: {count} x {instance_type} on-demand", count * p.hours,
                  "instance-hours", price, note=note)
        p.add("EBS gp3: node root volumes", count * volume_gb, "GB-months",
              p.price("ebs_gp3_gb_month"))


def database(p: Pricer, resources: list[Priced]) -> None:
    for db in of_type(resources, "aws:rds/instance:Instance"):
        copies = 2 if db.props.get("multiAz") else 1
        layout = "Multi-AZ" if copies == 2 else "single-AZ"
        instance_class = str(db.props.get("instanceClass"))
        p.add(f"RDS Postgres {instance_class} {layout}", copies * p.hours, "instance-hours",
              p.price("rds_postgres_hour", instance_class))
        storage = float(db.props.get("allocatedStorage") or 0)
        p.add(f"RDS gp3 storage ({layout})", copies * storage, "GB-months",
              p.price("rds_gp3_gb_month"))
        used = p.usage["database_used_gb"]
        kept = used * (1 + p.usage["database_daily_change_ratio"]
                       * float(db.props.get("backupRetentionPeriod") or 0))
        p.add("RDS backups beyond the free allowance (= allocated storage)",
              max(0.0, kept - storage), "GB-months", p.price("rds_backup_gb_month"),
              "assumption", "database_used_gb, database_daily_change_ratio")
        if db.props.get("enabledCloudwatchLogsExports"):
            p.add("CloudWatch Logs: Postgres log ingestion", p.usage["database_log_gb_month"],
                  "GB", p.price("cloudwatch_logs_ingest_gb"), "assumption",
                  "database_log_gb_month")


def backups(p: Pricer, resources: list[Priced]) -> None:
    for plan in of_type(resources, "aws:backup/plan:Plan"):
        rules = plan.props.get("rules") or []
        days = max([float((r.get("lifecycle") or {}).get("deleteAfter") or 0) for r in rules]
                   or [0.0])
        change = p.usage["database_used_gb"] * p.usage["database_daily_change_ratio"]
        stored = p.usage["database_used_gb"] + change * days
        p.add("AWS Backup: RDS recovery points", stored, "GB-months",
              p.price("backup_rds_snapshot_gb_month"), "assumption",
              f"a full copy, then {days:g} days of changes (database_used_gb, "
              "database_daily_change_ratio)")
        if any(r.get("copyActions") for r in rules):
            p.add("AWS Backup: the copy region's recovery points", stored, "GB-months",
                  p.price("backup_rds_snapshot_gb_month"), "assumption",
                  "priced at this region's rate")
            p.add("AWS Backup: transfer to the copy region", change * 30, "GB",
                  p.price("inter_region_transfer_gb"), "assumption")


def cache(p: Pricer, resources: list[Priced]) -> None:
    for group in of_type(resources, "aws:elasticache/replicationGroup:ReplicationGroup"):
        nodes = int(group.props.get("numCacheClusters") or 1)
        node_type = str(group.props.get("nodeType"))
        p.add(f"ElastiCache Valkey: {nodes} x {node_type}", nodes * p.hours, "node-hours",
              p.price("elasticache_valkey_hour", node_type))
