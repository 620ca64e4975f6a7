"""What every rule module shares: how a rule is declared and how workloads are read."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

Validator = Callable[[ResourceValidationArgs, ReportViolation], None]

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")
LONG_RUNNING_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")


def resource_policy(
    name: str,
    description: str,
    validate: Validator,
    *,
    severity: Severity,
    remediation: str,
    config: Mapping[str, Mapping[str, Any]] | None = None,
) -> ResourceValidationPolicy:
    """A resource rule; enforcement comes from the pack and its per-stack config."""
    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, severity=severity,
        remediation_steps=remediation,
        config_schema=PolicyConfigSchema(properties={k: dict(v) for k, v in config.items()})
        if config else None)


def alb_gateway_configuration(gateway: Mapping[str, Any]) -> str | None:
    """The name of the LoadBalancerConfiguration a Gateway's props name: the AWS Load Balancer
    Controller's ALB settings, certificate included. None for any other Gateway."""
    ref = (((gateway.get("spec") or {}).get("infrastructure") or {}).get("parametersRef")
           or {})
    return ref.get("name") if ref.get("kind") == "LoadBalancerConfiguration" else None


class Typed(Protocol):
    resource_type: str


def kubernetes_kind(resource: Typed) -> str | None:
    """The Kubernetes kind of a resource, or None for anything else (Helm releases included)."""
    if not resource.resource_type.startswith("kubernetes:") or "helm.sh" in resource.resource_type:
        return None
    return resource.resource_type.rsplit(":", 1)[-1]


def pod_spec(kind: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod spec inside a workload object, wherever its kind keeps it."""
    spec = props.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return ((((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {})
                .get("spec"))
    if kind in WORKLOAD_KINDS:
        return (spec.get("template") or {}).get("spec")
    return None


def containers(pod: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every container of a pod, init containers included, with a label for messages."""
    for field in ("initContainers", "containers"):
        for container in pod.get(field) or []:
            yield f"{field[:-1]} {container.get('name', '?')!r}", container


def workload(args: ResourceValidationArgs) -> tuple[str, Mapping[str, Any]] | None:
    """(kind/name, pod spec) for workload objects, None for everything else."""
    kind = kubernetes_kind(args)
    if kind is None:
        return None
    pod = pod_spec(kind, args.props)
    if pod is None:
        return None
    name = (args.props.get("metadata") or {}).get("name") or args.name
    return f"{kind} {name}", pod


__all__ = ["EnforcementLevel", "Severity", "containers", "kubernetes_kind", "pod_spec",
           "resource_policy", "workload", "LONG_RUNNING_KINDS", "WORKLOAD_KINDS"]
