"""Priced items behind Kubernetes objects and the remaining AWS ones (cost_model.py): load
balancers the controller makes for ALB Ingresses and ALB Gateways, EBS volumes behind claims,
logs, keys, ECR."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from common import alb_gateway_configuration
from cost_model import Priced, Pricer, gigabytes, of_type

ALB_GROUP = "alb.ingress.kubernetes.io/group.name"
ALB_SCHEME = "alb.ingress.kubernetes.io/scheme"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
ALB_GATEWAY_CONFIG = "kubernetes:gateway.k8s.aws/v1beta1:LoadBalancerConfiguration"


def _alb_gateways(resources: list[Priced]) -> dict[str, str]:
    """Gateway name -> scheme, for each Gateway that names a LoadBalancerConfiguration: the load
    balancer controller makes one ALB per such Gateway (its scheme defaults to internal)."""
    schemes = {((c.props.get("metadata") or {}).get("namespace"),
                (c.props.get("metadata") or {}).get("name")):
               (c.props.get("spec") or {}).get("scheme") or "internal"
               for c in of_type(resources, ALB_GATEWAY_CONFIG)}
    found = {}
    for gateway in of_type(resources, GATEWAY):
        metadata = gateway.props.get("metadata") or {}
        key = (metadata.get("namespace"), alb_gateway_configuration(gateway.props))
        if key in schemes:
            found[f"gateway {metadata.get('name') or gateway.name}"] = schemes[key]
    return found


def load_balancers(p: Pricer, resources: list[Priced]) -> None:
    groups: dict[str, str] = {}
    for ingress in of_type(resources, INGRESS):
        if (ingress.props.get("spec") or {}).get("ingressClassName") != "alb":
            continue
        annotations = (ingress.props.get("metadata") or {}).get("annotations") or {}
        groups.setdefault(annotations.get(ALB_GROUP) or ingress.name,
                          annotations.get(ALB_SCHEME, "internal"))
    groups.update(_alb_gateways(resources))
    public_subnets = sum(1 for s in of_type(resources, "aws:ec2/subnet:Subnet")
                         if s.props.get("mapPublicIpOnLaunch"))
    for group, scheme in sorted(groups.items()):
        p.add(f"ALB {group} ({scheme})", p.hours, "ALB-hours", p.price("alb_hour"))
        p.add(f"ALB {group}: capacity units", p.usage["alb_lcus"] * p.hours, "LCU-hours",
              p.price("alb_lcu_hour"), "assumption", "alb_lcus")
        if scheme == "internet-facing":
            p.add(f"ALB {group}: public IPv4, one per zone", public_subnets * p.hours,
                  "address-hours", p.price("public_ipv4_hour"))


def _claims_in(values: Any) -> Iterator[tuple[str, float, int]]:
    """(where, GB, replicas) for each volume claim template in Helm values: the
    prometheus-operator style `storage(Spec).volumeClaimTemplate` beside `replicas`."""
    if isinstance(values, Mapping):
        for key in ("storage", "storageSpec"):
            template = (values.get(key) or {}).get("volumeClaimTemplate") \
                if isinstance(values.get(key), Mapping) else None
            if template:
                size = template["spec"]["resources"]["requests"]["storage"]
                yield key, gigabytes(size), int(values.get("replicas") or 1)
        for child in values.values():
            yield from _claims_in(child)
    elif isinstance(values, list):
        for child in values:
            yield from _claims_in(child)


def volumes(p: Pricer, resources: list[Priced]) -> None:
    ebs = p.price("ebs_gp3_gb_month")
    for claim in of_type(resources, "kubernetes:core/v1:PersistentVolumeClaim"):
        size = claim.props["spec"]["resources"]["requests"]["storage"]
        p.add(f"EBS gp3: volume {claim.name}", gigabytes(size), "GB-months", ebs)
    for stateful in of_type(resources, "kubernetes:apps/v1:StatefulSet"):
        spec = stateful.props.get("spec") or {}
        for template in spec.get("volumeClaimTemplates") or []:
            size = gigabytes(template["spec"]["resources"]["requests"]["storage"])
            replicas = int(spec.get("replicas") or 1)
            p.add(f"EBS gp3: {stateful.name} volumes", size * replicas, "GB-months", ebs)
    for release in of_type(resources, "kubernetes:helm.sh/v3:Release"):
        total = sum(size * replicas for _, size, replicas in
                    _claims_in(release.props.get("values") or {}))
        p.add(f"EBS gp3: {release.name} volumes", total, "GB-months", ebs)


def logs_keys_registry(p: Pricer, resources: list[Priced]) -> None:
    for group in of_type(resources, "aws:cloudwatch/logGroup:LogGroup"):
        ingested = p.usage["control_plane_log_gb_month"]
        months = min(float(group.props.get("retentionInDays") or 30) / 30, 12)
        p.add(f"CloudWatch Logs: {group.name} ingestion", ingested, "GB",
              p.price("cloudwatch_logs_ingest_gb"), "assumption", "control_plane_log_gb_month")
        p.add(f"CloudWatch Logs: {group.name} storage", ingested * months, "GB-months",
              p.price("cloudwatch_logs_store_gb_month"), "assumption",
              f"{months:g} months retained, uncompressed")
    keys = list(of_type(resources, "aws:kms/key:Key"))
    p.add("KMS customer-managed keys", len(keys), "key-months", p.price("kms_key_month"))
    for policy in of_type(resources, "aws:ecr/lifecyclePolicy:LifecyclePolicy"):
        kept = max((rule["selection"].get("countNumber", 0) for rule in
                    json.loads(str(policy.props.get("policy") or "{}")).get("rules", [])),
                   default=0)
        p.add(f"ECR storage: {kept} images", kept * p.usage["image_gb"], "GB-months",
              p.price("ecr_gb_month"), "assumption", "image_gb per image")
