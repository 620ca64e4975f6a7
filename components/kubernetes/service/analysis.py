"""The AnalysisTemplates a canary step runs: one for the API, one for the workers, each a list of
the checks in canary_checks.py against the platform's Prometheus."""

from __future__ import annotations

from typing import Any

import pulumi_kubernetes as k8s

from components.kubernetes.service.canary_checks import CanaryCheck, api_checks, worker_checks
from components.kubernetes.service.context import NAME, ROLLOUTS_API, ServiceContext


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
    """The templates the strategy's steps name: `agent-service-worker-canary` always; for the
    API `agent-service-api-canary` (canary), or `-preview` and `-promoted` (blue-green)."""
    d = ctx.delivery
    window = f"{d.step_minutes}m"
    address = prometheus_url(ctx.args.monitoring_namespace)
    namespace = ctx.settings.namespace
    hashes = [{"name": "canary-hash"}, {"name": "stable-hash"}]
    specs: dict[tuple[str, str], dict[str, Any]] = {
        ("worker", "canary"): {"args": hashes, "metrics": [
            _metric(c, address, d.step_minutes)
            for c in worker_checks(namespace, window, d.thresholds)]}}
    api = api_checks(namespace, window, d.thresholds)
    if d.strategy == "bluegreen":
        specs[("api", "preview")] = {"args": [{"name": "preview-url"}],
                                     "metrics": [_ready_probe()]}
        # All traffic is the new version's now: no stable to compare with, so its own 5xx.
        specs[("api", "promoted")] = {"args": [{"name": "canary-hash"}], "metrics": [
            _metric(c, address, d.step_minutes) for c in api if c.name == "api-error-ratio"]}
    else:
        specs[("api", "canary")] = {"args": hashes, "metrics": [
            _metric(c, address, d.step_minutes) for c in api]}
    return [k8s.apiextensions.CustomResource(
        f"{ctx.name}-{component}-{purpose}-analysis", api_version=ROLLOUTS_API,
        kind="AnalysisTemplate",
        metadata=ctx.metadata(component, name=template_name(component, purpose)),
        spec=spec, opts=ctx.child(depends_on=list(ctx.args.rollouts_controller)))
        for (component, purpose), spec in specs.items()]


def _ready_probe() -> dict[str, Any]:
    """The preview answers /ready (its database, Redis and schema) five times running through
    its Service, from the controller. It has no users yet: this is all it can be judged on."""
    return {"name": "preview-ready", "count": 5, "interval": "30s", "failureLimit": 0,
            "successCondition": 'result == "ready"',
            "provider": {"web": {"url": "{{args.preview-url}}", "jsonPath": "{$.status}",
                                 "timeoutSeconds": 10}}}


def template_name(component: str, purpose: str = "canary") -> str:
    return f"{NAME}-{component}-{purpose}"
