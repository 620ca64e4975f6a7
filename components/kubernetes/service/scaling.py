"""Scaling and disruption: an HPA for the API, KEDA (or an HPA) for the workers, and PDBs.

None of them sets a Deployment's `replicas`: the autoscaler owns the count (see workloads.py).
With canary releases the autoscalers scale the Rollouts instead (progressive.py).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes.service.context import NAME, QUEUED_LIST, ServiceContext
from components.kubernetes.service.progressive import ScaleTarget


def autoscale(ctx: ServiceContext, api: ScaleTarget, worker: ScaleTarget,
              secret_name: pulumi.Input[str]) -> None:
    """`secret_name`: the service's Secret, whose REDIS_PASSWORD KEDA's Redis scaler uses."""
    s = ctx.settings
    _hpa(ctx, "api", api, s.api_min_replicas, s.api_max_replicas, memory=True)
    if s.keda_enabled:
        _worker_scaled_object(ctx, worker, secret_name)
    else:
        _hpa(ctx, "worker", worker, s.worker_min_replicas, s.worker_max_replicas, memory=False)
    for role, minimum in (("api", s.api_min_replicas), ("worker", s.worker_min_replicas)):
        if minimum > 1:
            _pdb(ctx, role)


def _hpa(ctx: ServiceContext, component: str, target: ScaleTarget, low: int,
         high: int, *, memory: bool) -> None:
    def utilization(resource: str, percent: int) -> k8s.autoscaling.v2.MetricSpecArgs:
        return k8s.autoscaling.v2.MetricSpecArgs(
            type="Resource", resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                name=resource, target=k8s.autoscaling.v2.MetricTargetArgs(
                    type="Utilization", average_utilization=percent)))

    metrics = [utilization("cpu", 70)] + ([utilization("memory", 80)] if memory else [])
    k8s.autoscaling.v2.HorizontalPodAutoscaler(
        f"{ctx.name}-{component}", metadata=ctx.metadata(component, name=f"{NAME}-{component}"),
        spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
            scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                api_version=target.api_version, kind=target.kind, name=target.name),
            min_replicas=low, max_replicas=high, metrics=metrics, behavior=hpa_behavior()),
        opts=ctx.child())


def _worker_scaled_object(ctx: ServiceContext, worker: ScaleTarget,
                          secret_name: pulumi.Input[str]) -> None:
    s = ctx.settings
    cache = ctx.args.cache
    address = pulumi.Output.all(cache.host, cache.port).apply(lambda a: f"{a[0]}:{a[1]}")
    # The password straight from the Secret: KEDA reads a target's environment from its pod
    # template, and a Rollout that takes its template from a Deployment has none. A fixed name:
    # a rotated Secret updates it in place.
    auth = k8s.apiextensions.CustomResource(
        f"{ctx.name}-worker-redis-auth", api_version="keda.sh/v1alpha1",
        kind="TriggerAuthentication", metadata=ctx.metadata("worker", name=f"{NAME}-worker-redis"),
        spec={"secretTargetRef": [{"parameter": "password", "name": secret_name,
                                   "key": "REDIS_PASSWORD"}]},
        opts=ctx.child())
    k8s.apiextensions.CustomResource(
        f"{ctx.name}-worker", api_version="keda.sh/v1alpha1", kind="ScaledObject",
        metadata=ctx.metadata("worker", name=f"{NAME}-worker"),
        spec={
            "scaleTargetRef": _keda_target(worker),
            "minReplicaCount": s.worker_min_replicas,
            "maxReplicaCount": s.worker_max_replicas,
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "advanced": {"horizontalPodAutoscalerConfig": {
                "name": f"{NAME}-worker", "behavior": hpa_behavior_dict()}},
            "triggers": [
                {"type": "redis", "metadata": {
                    "address": address, "listName": QUEUED_LIST,
                    "listLength": str(s.worker_queue_target),
                    "enableTLS": "true" if cache.tls else "false", "databaseIndex": "0"},
                 "authenticationRef": {"name": f"{NAME}-worker-redis"}},
                # Runs waiting on slow LLM calls use little CPU; busy ones use a lot.
                {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}},
            ],
        },
        opts=ctx.child(depends_on=[auth]))


def _keda_target(target: ScaleTarget) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": target.name}
    if target.kind != "Deployment":  # KEDA's default, left unwritten as it always was
        ref.update(apiVersion=target.api_version, kind=target.kind)
    return ref


def _pdb(ctx: ServiceContext, component: str) -> None:
    k8s.policy.v1.PodDisruptionBudget(
        f"{ctx.name}-{component}", metadata=ctx.metadata(component, name=f"{NAME}-{component}"),
        spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
            max_unavailable=1,
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=ctx.selector(component)),
            # A crash-looping pod must not block node drains.
            unhealthy_pod_eviction_policy="AlwaysAllow"),
        opts=ctx.child())


def hpa_behavior_dict() -> dict[str, Any]:
    """Scale up at once (double, or +4 pods, every 15 s); scale down at most 10 % a minute, and
    only after 5 minutes of lower load, so a dip between bursts does not drop capacity."""
    return {
        "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 15},
            {"type": "Pods", "value": 4, "periodSeconds": 15}]},
        "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Min", "policies": [
            {"type": "Percent", "value": 10, "periodSeconds": 60}]},
    }


def hpa_behavior() -> k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs:
    spec = hpa_behavior_dict()

    def rules(direction: str) -> k8s.autoscaling.v2.HPAScalingRulesArgs:
        rule = spec[direction]
        return k8s.autoscaling.v2.HPAScalingRulesArgs(
            stabilization_window_seconds=rule["stabilizationWindowSeconds"],
            select_policy=rule["selectPolicy"],
            policies=[k8s.autoscaling.v2.HPAScalingPolicyArgs(
                type=p["type"], value=p["value"], period_seconds=p["periodSeconds"])
                for p in rule["policies"]])

    return k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs(
        scale_up=rules("scaleUp"), scale_down=rules("scaleDown"))
