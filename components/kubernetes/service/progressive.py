"""Progressive releases of the API and the workers with Argo Rollouts (`progressiveDelivery`).

Each Deployment stays the source of its pods' template and the migration Job still runs before
it changes; a Rollout refers to it (`workloadRef`) and releases every new template as a canary:
for each step of `canarySteps` the canary takes that share, is analysed for `canaryStepMinutes`
against the stable version on the service's own metrics (analysis.py), and a failed analysis
aborts the release (the stable pods never left). The API's share is the ALB's traffic weight
where an ALB serves it, else its share of the pods; the workers' share is their share of the
worker pods, which is their share of the queue: every worker takes runs from the same list.

`bluegreen` releases the API instead as a whole second version behind a preview Service: it must
answer /ready through it, then takes all traffic at once (the active Service's selector), is
judged on its 5xx ratio for a step, and the old version stays until then to switch back to. The
workers stay canaries: they have no traffic to switch.

Switching a running stack to canary is rolling, not a cut-over: each Rollout starts at the
autoscaler's maximum next to its Deployment, the controller scales the Deployment down as the
Rollout's pods become available (`scaleDown: progressively`), and only then moves the stable
Service and the ALB to them. Argo owns what it changes (the Rollouts' replicas through the
autoscalers, the stable and canary Services' pod-hash selector, the Ingress' action annotation);
the program never sets those fields, so neither `pulumi up` nor a refresh reverts or reports
them.

`pulumi up` waits for each release: a Job runs Argo's own `kubectl argo rollouts status` on both
Rollouts after the Deployments changed and fails with the analysis' verdict when a canary is
aborted (release_gate.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes.service.analysis import analysis_templates, template_name
from components.kubernetes.service.context import NAME, ROLLOUTS_API, ServiceContext


@dataclass(frozen=True)
class ScaleTarget:
    """What an autoscaler scales: a Deployment, or the Rollout that replaced it."""

    api_version: str
    kind: str
    name: pulumi.Input[str]


def deployment_target(deployment: k8s.apps.v1.Deployment) -> ScaleTarget:
    return ScaleTarget("apps/v1", "Deployment", deployment.metadata.name)


@dataclass(frozen=True)
class Rollouts:
    api: ScaleTarget
    worker: ScaleTarget
    resources: list[pulumi.Resource]
    """The Rollouts."""
    ingress_backend: tuple[str, str]
    """The Service and port the API's Ingress (or HTTPRoute) sends traffic to: the API Service
    with `use-annotation` when the ALB splits a canary's traffic (the Rollout's forward action),
    the active Service for blue-green, else the API Service's `http`."""


def api_services(ctx: ServiceContext, tracks: tuple[str, str]) -> tuple[str, str]:
    """The two Services the controller points at the stable and new pods (stable and canary, or
    active and preview). Their component label differs from the API Service's, so the
    ServiceMonitor (which scrapes every API pod through that Service) does not scrape a pod
    twice."""
    names = []
    for track in tracks:
        name = f"{NAME}-api-{track}"
        k8s.core.v1.Service(
            f"{ctx.name}-api-{track}", metadata=ctx.metadata(f"api-{track}", name=name),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP", selector=ctx.selector("api"),
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=80, target_port="http",
                                                   protocol="TCP")]),
            # The controller adds the pod-template hash to the selector; never ours to undo.
            opts=ctx.child())
        names.append(name)
    return names[0], names[1]


def _analysis(template: str, *args: dict[str, Any]) -> dict[str, Any]:
    return {"templates": [{"templateName": template}], "args": list(args)}


def _hash(arg: str, which: str) -> dict[str, Any]:
    return {"name": arg, "valueFrom": {"podTemplateHashValue": which}}


def _canary(ctx: ServiceContext, component: str) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    for weight in ctx.delivery.steps:
        steps += [{"setWeight": weight},
                  {"analysis": _analysis(template_name(component),
                                         _hash("canary-hash", "Latest"),
                                         _hash("stable-hash", "Stable"))}]
    return {"canary": {"maxSurge": "25%", "maxUnavailable": 0,
                       "abortScaleDownDelaySeconds": 30, "steps": steps}}


def _blue_green(ctx: ServiceContext, active: str, preview: str) -> dict[str, Any]:
    preview_url = (f"http://{preview}.{ctx.settings.namespace}.svc.cluster.local/ready")
    return {"blueGreen": {
        "activeService": active, "previewService": preview,
        "autoPromotionEnabled": True,
        "prePromotionAnalysis": _analysis(template_name("api", "preview"),
                                          {"name": "preview-url", "value": preview_url}),
        "postPromotionAnalysis": _analysis(template_name("api", "promoted"),
                                           _hash("canary-hash", "Latest")),
        # The old pods stay through the post-promotion analysis, so a failed one switches
        # the traffic straight back to them.
        "scaleDownDelaySeconds": (ctx.delivery.step_minutes + 2) * 60,
        "abortScaleDownDelaySeconds": 30,
    }}


def _rollout(ctx: ServiceContext, component: str, deployment: k8s.apps.v1.Deployment,
             strategy: dict[str, Any], max_replicas: int,
             depends_on: list[pulumi.Resource]) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(
        f"{ctx.name}-{component}-rollout", api_version=ROLLOUTS_API, kind="Rollout",
        metadata=ctx.metadata(component, name=f"{NAME}-{component}"),
        spec={
            # Starts at the autoscaler's maximum so taking over from the Deployment never
            # lowers capacity; the autoscaler owns the count from then on.
            "replicas": max_replicas,
            "selector": {"matchLabels": ctx.selector(component)},
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                            "name": deployment.metadata.name, "scaleDown": "progressively"},
            "minReadySeconds": 5,
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": 600,
            # A new version whose pods never become ready is aborted, not left half-way.
            "progressDeadlineAbort": True,
            "strategy": strategy,
        },
        opts=ctx.child(depends_on=[deployment, *depends_on],
                       # The autoscaler's from the first scale; see handleSSAIgnoreFields in
                       # pulumi-kubernetes: a field another manager owns is left to it.
                       ignore_changes=["spec.replicas"],
                       # Its ReplicaSets run every pod while the Deployment stays at zero:
                       # deleting it (turning canaries off) would stop the service. Pulumi
                       # refuses; docs/delivery.md has the way off.
                       protect=ctx.args.protect))


def progressive_rollouts(ctx: ServiceContext, api: k8s.apps.v1.Deployment,
                         worker: k8s.apps.v1.Deployment) -> Rollouts:
    s = ctx.settings
    templates: list[pulumi.Resource] = [*analysis_templates(ctx), *ctx.args.rollouts_controller]
    backend = (f"{NAME}-api", "http")
    if ctx.delivery.strategy == "bluegreen":
        active, preview = api_services(ctx, ("active", "preview"))
        api_strategy = _blue_green(ctx, active, preview)
        backend = (active, "http")
    else:
        api_strategy = _canary(ctx, "api")
        if s.ingress.enabled and s.ingress.alb and s.ingress.edge == "ingress":
            stable, canary = api_services(ctx, ("stable", "canary"))
            api_strategy["canary"].update({
                "stableService": stable, "canaryService": canary,
                "trafficRouting": {"alb": {"ingress": f"{NAME}-api",
                                           "rootService": f"{NAME}-api", "servicePort": 80}},
            })
            backend = (f"{NAME}-api", "use-annotation")
    api_rollout = _rollout(ctx, "api", api, api_strategy, s.api_max_replicas, templates)
    # Workers have no traffic to switch: a blue-green "preview" worker would take runs at once.
    # Their share of the pods is their share of the queue, so they are always canaries.
    worker_rollout = _rollout(ctx, "worker", worker, _canary(ctx, "worker"),
                              s.worker_max_replicas, templates)
    return Rollouts(
        api=ScaleTarget(ROLLOUTS_API, "Rollout", f"{NAME}-api"),
        worker=ScaleTarget(ROLLOUTS_API, "Rollout", f"{NAME}-worker"),
        resources=[api_rollout, worker_rollout], ingress_backend=backend)
