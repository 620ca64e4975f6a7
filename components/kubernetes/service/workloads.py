"""The service's workloads: the migration Job, then the API and worker Deployments.

Both Deployments wait for the Job, so no pod runs against an older schema; the Job is auto-named,
so its replacement (a new image, config or secret) is create-before-delete and never cascades into
them. Their pod templates change only when what the pods run changes, which rolls them in place.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes.service.context import API_PORT, NAME, WORKER_METRICS_PORT
from components.kubernetes.service.pods import Pods, scrape_annotations

# uvicorn's graceful shutdown (25 s, app/agent_service/cli.py) plus the preStop pause.
API_PRE_STOP_SECONDS = 5
API_GRACE_SECONDS = 40
# A stopping worker finishes its runs within jobTimeoutSeconds; this covers start-up and exit.
WORKER_GRACE_MARGIN_SECONDS = 30


def migration_job(pods: Pods) -> k8s.batch.v1.Job:
    ctx = pods.ctx
    # The template (image, config and secret names) is immutable in Kubernetes, so a new image
    # or a new config runs a new Job; on an unchanged schema it is a no-op. Pulumi deletes the
    # previous Job after the Deployments have rolled, which is why the Job has no
    # ttlSecondsAfterFinished: a TTL would delete it behind Pulumi's back, and the next refresh
    # would report drift and run it again.
    container = pods.container("migrate", ctx.settings.api_resources)
    return k8s.batch.v1.Job(
        f"{ctx.name}-migrate",
        # A failed migration is retried by the next `pulumi up` instead of blocking it.
        metadata=ctx.metadata("migrate", annotations={"pulumi.com/replaceUnready": "true"}),
        spec=k8s.batch.v1.JobSpecArgs(
            backoff_limit=3, active_deadline_seconds=600,
            template=pods.template("migrate", container, grace_seconds=30,
                                   restart_policy="Never", spread=False)),
        opts=ctx.child(custom_timeouts=pulumi.CustomTimeouts(create="15m", update="15m")))


def _deployment(pods: Pods, component: str, template: k8s.core.v1.PodTemplateSpecArgs,
                migration: k8s.batch.v1.Job) -> k8s.apps.v1.Deployment:
    ctx = pods.ctx
    return k8s.apps.v1.Deployment(
        f"{ctx.name}-{component}",
        metadata=ctx.metadata(component, name=f"{NAME}-{component}"),
        spec=k8s.apps.v1.DeploymentSpecArgs(
            # No `replicas`: the autoscaler owns the count, and a value here would reset it
            # on every `pulumi up`.
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=ctx.selector(component)),
            strategy=k8s.apps.v1.DeploymentStrategyArgs(
                type="RollingUpdate",
                rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
                    max_surge="25%", max_unavailable=0)),
            min_ready_seconds=5,
            revision_history_limit=5,
            progress_deadline_seconds=600,
            template=template),
        opts=ctx.child(
            # Never roll out against an older schema: the migration Job finishes first.
            depends_on=[migration],
            # The autoscaler owns the count. With the field ignored, a refreshed preview after
            # scaling is no drift, and server-side apply leaves the field to the HPA.
            ignore_changes=["spec.replicas"]))


def api_deployment(pods: Pods, migration: k8s.batch.v1.Job) -> k8s.apps.v1.Deployment:
    def http(path: str, **kwargs: Any) -> k8s.core.v1.ProbeArgs:
        return k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path=path, port="http"), **kwargs)

    container = pods.container(
        "api", pods.ctx.settings.api_resources,
        ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=API_PORT)],
        startup_probe=http("/health", period_seconds=2, failure_threshold=30),
        liveness_probe=http("/health", period_seconds=10, timeout_seconds=2,
                            failure_threshold=3),
        # /ready checks Postgres, Redis and the schema version: an API pod that cannot reach
        # them leaves the Service instead of answering 500s.
        readiness_probe=http("/ready", period_seconds=5, timeout_seconds=3,
                             failure_threshold=2),
        # The endpoint removal reaches every load balancer and kube-proxy after a moment; until
        # then the pod keeps serving.
        lifecycle=k8s.core.v1.LifecycleArgs(pre_stop=k8s.core.v1.LifecycleHandlerArgs(
            sleep=k8s.core.v1.SleepActionArgs(seconds=API_PRE_STOP_SECONDS))))
    template = pods.template("api", container, grace_seconds=API_GRACE_SECONDS,
                             annotations=scrape_annotations(API_PORT))
    return _deployment(pods, "api", template, migration)


def worker_deployment(pods: Pods, migration: k8s.batch.v1.Job) -> k8s.apps.v1.Deployment:
    s = pods.ctx.settings

    def health(**kwargs: Any) -> k8s.core.v1.ProbeArgs:
        # /health fails when the worker's event loop has stalled (app/.../jobs/health.py).
        return k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path="/health", port="metrics"), **kwargs)

    container = pods.container(
        "worker", s.worker_resources,
        ports=[k8s.core.v1.ContainerPortArgs(name="metrics", container_port=WORKER_METRICS_PORT)],
        startup_probe=health(period_seconds=2, failure_threshold=30),
        liveness_probe=health(period_seconds=15, timeout_seconds=3, failure_threshold=4),
        readiness_probe=health(period_seconds=10, timeout_seconds=3))
    annotations = scrape_annotations(WORKER_METRICS_PORT)
    if s.worker_do_not_disrupt:
        # Long runs are not evicted by consolidation; drains and the grace period still apply.
        annotations["karpenter.sh/do-not-disrupt"] = "true"
        annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"] = "false"
    template = pods.template("worker", container,
                             grace_seconds=s.job_timeout_seconds + WORKER_GRACE_MARGIN_SECONDS,
                             annotations=annotations)
    return _deployment(pods, "worker", template, migration)
