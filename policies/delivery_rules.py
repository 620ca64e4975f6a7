"""Delivery rules: how a new version of a serving workload reaches its users."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from common import kubernetes_kind
from stack_rules import COMPONENT_LABEL, SERVING_COMPONENTS


def _judged(strategy: Mapping[str, Any]) -> bool:
    """A canary with an analysis step, or a blue-green release analysed before promotion."""
    canary = strategy.get("canary") or {}
    if any("analysis" in step for step in canary.get("steps") or []):
        return True
    return bool((strategy.get("blueGreen") or {}).get("prePromotionAnalysis"))


def serving_workloads_release_progressively(args: StackValidationArgs,
                                            report: ReportViolation) -> None:
    if not args.get_config().get("required", True):
        return
    judged: set[tuple[str, str]] = set()
    deployments = []
    for resource in args.resources:
        kind = kubernetes_kind(resource)
        metadata = resource.props.get("metadata") or {}
        namespace = metadata.get("namespace") or "default"
        spec = resource.props.get("spec") or {}
        if kind == "Rollout" and _judged(spec.get("strategy") or {}):
            ref = spec.get("workloadRef") or {}
            if ref.get("kind") == "Deployment":
                judged.add((namespace, str(ref.get("name"))))
        elif kind == "Deployment":
            labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if labels.get(COMPONENT_LABEL) in SERVING_COMPONENTS:
                deployments.append((namespace, metadata.get("name") or resource.name,
                                    resource.urn))
    for namespace, name, urn in deployments:
        if (namespace, name) not in judged:
            report(f"Deployment {namespace}/{name} serves traffic but a new version replaces "
                   "all of its pods unjudged (a rolling update): release it through an Argo "
                   "Rollout whose canary steps run an analysis (progressiveDelivery: canary).",
                   urn)


DELIVERY_POLICIES = [
    StackValidationPolicy(
        name="serving-workloads-release-progressively",
        description="API and worker Deployments are released by an Argo Rollout that judges "
                    "each new version before it takes all traffic.",
        validate=serving_workloads_release_progressively, severity=Severity.HIGH,
        remediation_steps="Set progressiveDelivery to canary.",
        config_schema=PolicyConfigSchema(properties={
            "required": {"type": "boolean", "default": True}})),
]
