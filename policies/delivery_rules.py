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

from stack_rules import COMPONENT_LABEL, SERVING_COMPONENTS, kube_objects


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
    judged = {(rollout.namespace, str(ref.get("name")))
              for rollout in kube_objects(args, "Rollout")
              if _judged(rollout.spec.get("strategy") or {})
              and (ref := rollout.spec.get("workloadRef") or {}).get("kind") == "Deployment"}
    for deployment in kube_objects(args, "Deployment"):
        if deployment.pod_labels.get(COMPONENT_LABEL) in SERVING_COMPONENTS and \
                (deployment.namespace, deployment.name) not in judged:
            report(f"Deployment {deployment.namespace}/{deployment.name} serves traffic but a "
                   "new version replaces all of its pods unjudged (a rolling update): release it "
                   "through an Argo Rollout whose canary steps run an analysis "
                   "(progressiveDelivery: canary).", deployment.resource.urn)


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
