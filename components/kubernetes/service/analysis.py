"""The AnalysisTemplates a canary step runs: one for the API, one for the workers, each a list of
the checks in canary_checks.py against the platform's Prometheus."""

from __future__ import annotations

from typing import Any

import pulumi_kubernetes as k8s

from components.kubernetes.service.canary_checks import CanaryCheck, api_checks, worker_checks
from components.kubernetes.service.context import NAME, ServiceContext

ROLLOUTS_API = "argoproj.io/v1alpha1"


def prometheus_url(monitoring_namespace: str) -> str:
    # kube-prometheus-stack's Prometheus Service (fullnameOverride, observability/monitoring.py).
    return f"http://kube-prometheus-stack-prometheus.{monitoring_namespace}.svc:9090"


def _metric(check: CanaryCheck, address: str, minutes: int) -> dict[str, Any]:
    return {
        "name": check.name,
        # One measurement over the whole step, taken at its end.
        "initialDelay": f"{minutes}m",
        "count": 1,
        "successCondition": check.success_condition,
        "failureCondition": check.failure_condition,
        # Prometheus unreachable: retried, then the step errors and the rollout aborts.
        "consecutiveErrorLimit": 3,
        "provider": {"prometheus": {"address": address, "query": check.query,
                                    "timeout": 30}},
    }


def analysis_templates(ctx: ServiceContext) -> list[k8s.apiextensions.CustomResource]:
    """Creates both templates (API, workers), named `agent-service-<component>-canary`."""
    d = ctx.delivery
    window = f"{d.step_minutes}m"
    address = prometheus_url(ctx.args.monitoring_namespace)
    templates = []
    for component, checks in (
            ("api", api_checks(ctx.settings.namespace, window, d.thresholds)),
            ("worker", worker_checks(ctx.settings.namespace, window, d.thresholds))):
        templates.append(k8s.apiextensions.CustomResource(
            f"{ctx.name}-{component}-analysis", api_version=ROLLOUTS_API,
            kind="AnalysisTemplate",
            metadata=ctx.metadata(component, name=template_name(component)),
            spec={"args": [{"name": "canary-hash"}, {"name": "stable-hash"}],
                  "metrics": [_metric(c, address, d.step_minutes) for c in checks]},
            opts=ctx.child(depends_on=list(ctx.args.rollouts_controller))))
    return templates


def template_name(component: str) -> str:
    return f"{NAME}-{component}-canary"
