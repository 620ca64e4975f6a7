"""The agent service on Kubernetes: migrations, API and workers, exposure, scaling and isolation.

Every stack deploys the same objects; what differs (replicas, sizes, ingress class and TLS, which
peers may talk to the pods) arrives in `AgentServiceArgs`, so this module never asks which stack
it is on. Pod hardening matches Pod Security Admission `restricted`, which the namespace enforces.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config.service import Resources, ServiceSettings
from components.endpoints import CacheEndpoint, DatabaseEndpoint
from components.kubernetes.in_cluster_data import DATA_ACCESS_LABEL
from components.kubernetes.network_policies import (
    ServiceNetworkPolicies,
    ServiceNetworkPoliciesArgs,
)
from components.labels import PLATFORM_LABELS, PSA_RESTRICTED

API_PORT = 8000
WORKER_METRICS_PORT = 9100
APP_UID = 10001
QUEUE_NAME = "research"
# SAQ keeps a queue's waiting job ids in this Redis list (saq/queue/redis.py: `saq:<name>:queued`).
QUEUED_LIST = f"saq:{QUEUE_NAME}:queued"
# uvicorn's graceful shutdown (25 s, app/agent_service/cli.py) plus the preStop pause.
API_PRE_STOP_SECONDS = 5
API_GRACE_SECONDS = 40
# A stopping worker finishes its runs within jobTimeoutSeconds; this covers start-up and exit.
WORKER_GRACE_MARGIN_SECONDS = 30
ZONE_KEY = "topology.kubernetes.io/zone"
HOST_KEY = "kubernetes.io/hostname"
NAME = "agent-service"
# pulumi-kubernetes: create or update the object without waiting for it to become ready.
SKIP_AWAIT = "pulumi.com/skipAwait"


@dataclass(kw_only=True)
class AgentServiceArgs:
    settings: ServiceSettings
    """Replicas, sizes, ingress and LLM settings from the stack config."""
    image: pulumi.Input[str]
    """The service image, digest-pinned when it was pushed to a registry."""
    database: DatabaseEndpoint
    """Postgres the service uses."""
    cache: CacheEndpoint
    """Redis/Valkey the service uses for its queue, cache and rate limits."""
    ingress_peers: Sequence[k8s.networking.v1.NetworkPolicyPeerArgs]
    """Where traffic to the API comes from: the ALB's VPC or the ingress controller's pods."""
    data_peers: Sequence[k8s.networking.v1.NetworkPolicyPeerArgs]
    """Where Postgres and Redis live, for egress rules."""
    monitoring_namespace: str
    """Namespace whose Prometheus may scrape the pods."""
    instance: str
    """`app.kubernetes.io/instance`: the stack name."""
    llm_api_keys: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    """Secret environment variables such as OPENAI_API_KEY."""
    aws_tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for AWS resources the load balancer controller creates."""
    tracing_endpoint: str | None = None
    """OTLP/HTTP endpoint of the trace collector; None turns tracing off."""
    trace_sample_ratio: float = 0.1
    """Share of traces kept (parent-based)."""


class AgentService(pulumi.ComponentResource):
    """Namespace, migration Job, API and worker Deployments, Service, Ingress, autoscalers, PDBs
    and NetworkPolicies of the agent service."""

    namespace: pulumi.Output[str]
    api_service_name: str
    port_forward: str
    """The command that reaches the API from a workstation, whatever the exposure."""
    api_url: str | None
    """The API's public URL when an Ingress with a host is configured."""

    def __init__(self, name: str, args: AgentServiceArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:agent_service:AgentService", name, None, opts)
        self._name = name
        self._args = args
        s = args.settings
        ns_labels = {**PSA_RESTRICTED, DATA_ACCESS_LABEL: "true",
                     **PLATFORM_LABELS}
        if s.ingress.enabled and s.ingress.alb:
            # The ALB's target health gates each rollout step, so pods leave the target group
            # before they stop and a rollout never outruns the load balancer.
            ns_labels["elbv2.k8s.aws/pod-readiness-gate-inject"] = "enabled"
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=s.namespace, labels=ns_labels),
            opts=self._child())
        self.namespace = namespace.metadata.name
        self._ns = self.namespace

        ServiceNetworkPolicies(f"{name}-network", ServiceNetworkPoliciesArgs(
            namespace=self._ns, api_selector=self.selector("api"),
            worker_selector=self.selector("worker"), api_port=API_PORT,
            worker_metrics_port=WORKER_METRICS_PORT, ingress_peers=args.ingress_peers,
            data_peers=args.data_peers, monitoring_namespace=args.monitoring_namespace,
            llm_cidrs=s.llm.egress_cidrs, labels=self.labels("network"),
            tracing=args.tracing_endpoint is not None),
            opts=self._child())

        account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=NAME, namespace=self._ns, labels=self.labels("service-account"),
                annotations={"eks.amazonaws.com/role-arn": s.service_account_role_arn}
                if s.service_account_role_arn else None),
            # No pod of the service talks to the Kubernetes API.
            automount_service_account_token=False,
            opts=self._child())
        self._account = account.metadata.name

        # Auto-named (no metadata.name): a change of data replaces the ConfigMap or Secret
        # create-before-delete under a new name, and that new name in the pod templates rolls the
        # Deployments in place. A fixed name would force delete-before-replace, which the engine
        # cascades into replacing every workload that depends on it (a full outage).
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=self._ns, labels=self.labels("config")),
            # Never edited in place: each version is a new object, so kubelets stop watching it.
            immutable=True, data=self.config_data(), opts=self._child())
        secret = k8s.core.v1.Secret(
            f"{name}-secrets",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=self._ns,
                                                labels=self.labels("secrets")),
            immutable=True, type="Opaque", string_data=self.secret_data(), opts=self._child())
        self._env_from = [
            k8s.core.v1.EnvFromSourceArgs(
                config_map_ref=k8s.core.v1.ConfigMapEnvSourceArgs(name=config.metadata.name)),
            k8s.core.v1.EnvFromSourceArgs(
                secret_ref=k8s.core.v1.SecretEnvSourceArgs(name=secret.metadata.name)),
        ]

        migration = self._migration_job()
        api = self._api(migration)
        worker = self._worker(migration)
        self.api_service_name = self._api_service()
        self.port_forward = (f"kubectl -n {s.namespace} port-forward "
                             f"svc/{self.api_service_name} 8000:80")
        self.api_url = (f"{'https' if s.ingress.tls else 'http'}://{s.ingress.host}"
                        if s.ingress.enabled and s.ingress.host else None)
        if s.ingress.enabled:
            self._ingress()
        self._api_autoscaler(api)
        if s.keda_enabled:
            self._worker_scaled_object(worker)
        else:
            self._hpa("worker", worker, s.worker_min_replicas, s.worker_max_replicas,
                      memory=False)
        for role, minimum in (("api", s.api_min_replicas), ("worker", s.worker_min_replicas)):
            if minimum > 1:
                self._pdb(role)
        self.register_outputs({"namespace": self.namespace})

    # --- shared pieces ----------------------------------------------------------------------

    def _child(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def selector(self, component: str) -> dict[str, str]:
        return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/instance":
                self._args.instance, "app.kubernetes.io/component": component}

    def labels(self, component: str) -> dict[str, str]:
        return {**self.selector(component), **PLATFORM_LABELS}

    def config_data(self) -> dict[str, str]:
        """Non-secret settings, as the service reads them from its environment."""
        s = self._args.settings
        data = {
            "ENVIRONMENT": "production",
            "LOG_LEVEL": s.log_level,
            "RATE_LIMIT": s.rate_limit,
            "QUEUE_NAME": QUEUE_NAME,
            "WORKER_CONCURRENCY": str(s.worker_concurrency),
            "WORKER_METRICS_PORT": str(WORKER_METRICS_PORT),
            "JOB_TIMEOUT_SECONDS": str(s.job_timeout_seconds),
            "SHUTDOWN_GRACE_SECONDS": str(s.job_timeout_seconds),
            "AGENT_WALL_CLOCK_SECONDS": str(max(1, s.job_timeout_seconds - 10)),
            "LLM_PROVIDERS": ",".join(s.llm.providers),
            "OPENAI_MODEL": s.llm.openai_model,
            "ANTHROPIC_MODEL": s.llm.anthropic_model,
        }
        if s.llm.openai_base_url:
            data["OPENAI_BASE_URL"] = s.llm.openai_base_url
        if self._args.tracing_endpoint:
            data.update({
                "OTEL_EXPORTER_OTLP_ENDPOINT": self._args.tracing_endpoint,
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": str(self._args.trace_sample_ratio),
            })
        return data

    def secret_data(self) -> dict[str, pulumi.Input[str]]:
        """Credentials: connection strings with passwords, and the LLM API keys."""
        cache = self._args.cache
        return {
            # libpq form; the service adapts it for asyncpg and keeps sslmode.
            "DATABASE_URL": self._args.database.url(),
            "REDIS_URL": cache.url(),
            # KEDA's Redis scaler reads the password from the worker's environment.
            "REDIS_PASSWORD": cache.password,
            **self._args.llm_api_keys,
        }

    def _pod(self, component: str, container: k8s.core.v1.ContainerArgs, *,
             grace_seconds: int, restart_policy: str | None = None,
             spread: bool = True, annotations: Mapping[str, pulumi.Input[str]] | None = None,
             ) -> k8s.core.v1.PodTemplateSpecArgs:
        s = self._args.settings
        spread_constraints = None
        if spread:
            spread_constraints = [
                k8s.core.v1.TopologySpreadConstraintArgs(
                    topology_key=key, max_skew=1,
                    when_unsatisfiable=mode,
                    label_selector=k8s.meta.v1.LabelSelectorArgs(
                        match_labels=self.selector(component)),
                    # Only pods of the same ReplicaSet count, so a rollout is not skewed by the
                    # pods it is replacing.
                    match_label_keys=["pod-template-hash"])
                for key, mode in (
                    (ZONE_KEY, "DoNotSchedule" if s.zone_spread_required else "ScheduleAnyway"),
                    (HOST_KEY, "ScheduleAnyway"))]
        return k8s.core.v1.PodTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(
                labels=self.labels(component),
                annotations=dict(annotations) if annotations else None),
            spec=k8s.core.v1.PodSpecArgs(
                service_account_name=self._account,
                automount_service_account_token=False,
                enable_service_links=False,
                restart_policy=restart_policy,
                termination_grace_period_seconds=grace_seconds,
                security_context=k8s.core.v1.PodSecurityContextArgs(
                    run_as_non_root=True, run_as_user=APP_UID, run_as_group=APP_UID,
                    fs_group=APP_UID,
                    seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault")),
                topology_spread_constraints=spread_constraints,
                containers=[container],
                volumes=[k8s.core.v1.VolumeArgs(
                    name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(
                        size_limit="256Mi"))],
            ))

    def _container(self, role: str, resources: Resources,
                   **kwargs: Any) -> k8s.core.v1.ContainerArgs:
        def field(path: str) -> k8s.core.v1.EnvVarSourceArgs:
            return k8s.core.v1.EnvVarSourceArgs(
                field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path=path))

        env = [k8s.core.v1.EnvVarArgs(name="POD_NAME", value_from=field("metadata.name")),
               k8s.core.v1.EnvVarArgs(name="POD_NAMESPACE",
                                      value_from=field("metadata.namespace")),
               k8s.core.v1.EnvVarArgs(name="NODE_NAME", value_from=field("spec.nodeName")),
               # Where a span came from, in the trace backend (the OTel SDK reads this).
               k8s.core.v1.EnvVarArgs(
                   name="OTEL_RESOURCE_ATTRIBUTES",
                   value="k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE),"
                         f"k8s.node.name=$(NODE_NAME),k8s.container.name={role}")]
        return k8s.core.v1.ContainerArgs(
            name=role, image=self._args.image, image_pull_policy="IfNotPresent",
            args=[role], env=env, env_from=self._env_from,
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": resources.cpu_request, "memory": resources.memory_request},
                limits={"cpu": resources.cpu_limit, "memory": resources.memory_limit}),
            security_context=k8s.core.v1.SecurityContextArgs(
                run_as_non_root=True, allow_privilege_escalation=False,
                read_only_root_filesystem=True,
                capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"])),
            volume_mounts=[k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")],
            **kwargs)

    def _deployment(self, component: str, template: k8s.core.v1.PodTemplateSpecArgs,
                    migration: k8s.batch.v1.Job) -> k8s.apps.v1.Deployment:
        return k8s.apps.v1.Deployment(
            f"{self._name}-{component}",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{NAME}-{component}", namespace=self._ns, labels=self.labels(component)),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                # No `replicas`: the autoscaler owns the count, and a value here would reset it
                # on every `pulumi up`.
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=self.selector(component)),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
                        max_surge="25%", max_unavailable=0)),
                min_ready_seconds=5,
                revision_history_limit=5,
                progress_deadline_seconds=600,
                template=template),
            opts=self._child(
                # Never roll out against an older schema: the migration Job finishes first. The
                # Job is auto-named, so its replacement never cascades into this Deployment.
                depends_on=[migration],
                # The autoscaler owns the count. With the field ignored, a refreshed preview
                # after scaling is no drift, and server-side apply leaves the field to the HPA.
                ignore_changes=["spec.replicas"]))

    # --- workloads --------------------------------------------------------------------------

    def _migration_job(self) -> k8s.batch.v1.Job:
        s = self._args.settings
        # Auto-named, so a replacement is create-before-delete: a new Job runs to completion
        # while the old one still exists, and nothing that depends on it is replaced. The
        # template (image, config and secret names) is immutable in Kubernetes, so a new image
        # or a new config runs a new Job; on an unchanged schema it is a no-op. Pulumi deletes
        # the previous Job after the Deployments have rolled, which is why the Job has no
        # ttlSecondsAfterFinished: a TTL would delete it behind Pulumi's back, and the next
        # refresh would report drift and run it again.
        container = self._container("migrate", s.api_resources)
        return k8s.batch.v1.Job(
            f"{self._name}-migrate",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                namespace=self._ns, labels=self.labels("migrate"),
                # A failed migration is retried by the next `pulumi up` instead of blocking it.
                annotations={"pulumi.com/replaceUnready": "true"}),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=3, active_deadline_seconds=600,
                template=self._pod("migrate", container, grace_seconds=30,
                                   restart_policy="Never", spread=False)),
            opts=self._child(custom_timeouts=pulumi.CustomTimeouts(create="15m", update="15m")))

    def _api(self, migration: k8s.batch.v1.Job) -> k8s.apps.v1.Deployment:
        s = self._args.settings

        def http(path: str, **kwargs: Any) -> k8s.core.v1.ProbeArgs:
            return k8s.core.v1.ProbeArgs(
                http_get=k8s.core.v1.HTTPGetActionArgs(path=path, port="http"), **kwargs)

        container = self._container(
            "api", s.api_resources,
            ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=API_PORT)],
            startup_probe=http("/health", period_seconds=2, failure_threshold=30),
            liveness_probe=http("/health", period_seconds=10, timeout_seconds=2,
                                failure_threshold=3),
            # /ready checks Postgres, Redis and the schema version: an API pod that cannot
            # reach them leaves the Service instead of answering 500s.
            readiness_probe=http("/ready", period_seconds=5, timeout_seconds=3,
                                 failure_threshold=2),
            # The endpoint removal reaches every load balancer and kube-proxy after a moment;
            # until then the pod keeps serving.
            lifecycle=k8s.core.v1.LifecycleArgs(pre_stop=k8s.core.v1.LifecycleHandlerArgs(
                sleep=k8s.core.v1.SleepActionArgs(seconds=API_PRE_STOP_SECONDS))))
        template = self._pod("api", container, grace_seconds=API_GRACE_SECONDS,
                             annotations=_scrape(API_PORT))
        return self._deployment("api", template, migration)

    def _worker(self, migration: k8s.batch.v1.Job) -> k8s.apps.v1.Deployment:
        s = self._args.settings

        def health(**kwargs: Any) -> k8s.core.v1.ProbeArgs:
            # /health fails when the worker's event loop has stalled (app/.../jobs/health.py).
            return k8s.core.v1.ProbeArgs(
                http_get=k8s.core.v1.HTTPGetActionArgs(path="/health", port="metrics"),
                **kwargs)

        container = self._container(
            "worker", s.worker_resources,
            ports=[k8s.core.v1.ContainerPortArgs(name="metrics",
                                                 container_port=WORKER_METRICS_PORT)],
            startup_probe=health(period_seconds=2, failure_threshold=30),
            liveness_probe=health(period_seconds=15, timeout_seconds=3, failure_threshold=4),
            readiness_probe=health(period_seconds=10, timeout_seconds=3))
        annotations = _scrape(WORKER_METRICS_PORT)
        if s.worker_do_not_disrupt:
            # Long runs are not evicted by consolidation; drains and the grace period still apply.
            annotations["karpenter.sh/do-not-disrupt"] = "true"
            annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"] = "false"
        template = self._pod("worker", container,
                             grace_seconds=s.job_timeout_seconds + WORKER_GRACE_MARGIN_SECONDS,
                             annotations=annotations)
        return self._deployment("worker", template, migration)

    # --- exposure ---------------------------------------------------------------------------

    def _api_service(self) -> str:
        name = f"{NAME}-api"
        k8s.core.v1.Service(
            f"{self._name}-api",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=self._ns,
                                                labels=self.labels("api")),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP", selector=self.selector("api"),
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=80, target_port="http",
                                                   protocol="TCP")]),
            opts=self._child())
        return name

    def _ingress(self) -> None:
        ingress = self._args.settings.ingress
        annotations: dict[str, str] = {}
        tls = None
        if ingress.alb:
            annotations = alb_annotations(ingress.scheme, ingress.certificate_arn,
                                          self._args.aws_tags)
        else:
            # The program installs the ALB controller itself, so an ALB Ingress is awaited until
            # it has an address. Any other class belongs to a controller the cluster may not have
            # (kind, minikube and Docker Desktop ship none), and some controllers never publish
            # an address at all: waiting would hang `pulumi up` for ten minutes, then fail.
            annotations = {SKIP_AWAIT: "true"}
            if ingress.tls_secret:
                tls = [k8s.networking.v1.IngressTLSArgs(
                    hosts=[ingress.host] if ingress.host else None,
                    secret_name=ingress.tls_secret)]
        k8s.networking.v1.Ingress(
            f"{self._name}-api",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{NAME}-api", namespace=self._ns, labels=self.labels("api"),
                annotations=annotations or None),
            spec=k8s.networking.v1.IngressSpecArgs(
                ingress_class_name=ingress.class_name, tls=tls,
                rules=[k8s.networking.v1.IngressRuleArgs(
                    host=ingress.host,
                    http=k8s.networking.v1.HTTPIngressRuleValueArgs(paths=[
                        k8s.networking.v1.HTTPIngressPathArgs(
                            path="/", path_type="Prefix",
                            backend=k8s.networking.v1.IngressBackendArgs(
                                service=k8s.networking.v1.IngressServiceBackendArgs(
                                    name=self.api_service_name,
                                    port=k8s.networking.v1.ServiceBackendPortArgs(
                                        name="http"))))]))]),
            opts=self._child())

    # --- scaling and disruption -------------------------------------------------------------

    def _api_autoscaler(self, api: k8s.apps.v1.Deployment) -> None:
        s = self._args.settings
        self._hpa("api", api, s.api_min_replicas, s.api_max_replicas, memory=True)

    def _hpa(self, component: str, target: k8s.apps.v1.Deployment, low: int, high: int, *,
             memory: bool) -> None:
        def utilization(resource: str, percent: int) -> k8s.autoscaling.v2.MetricSpecArgs:
            return k8s.autoscaling.v2.MetricSpecArgs(
                type="Resource", resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                    name=resource, target=k8s.autoscaling.v2.MetricTargetArgs(
                        type="Utilization", average_utilization=percent)))

        metrics = [utilization("cpu", 70)] + ([utilization("memory", 80)] if memory else [])
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{self._name}-{component}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{NAME}-{component}", namespace=self._ns,
                                                labels=self.labels(component)),
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=target.metadata.name),
                min_replicas=low, max_replicas=high, metrics=metrics,
                behavior=hpa_behavior()),
            opts=self._child())

    def _worker_scaled_object(self, worker: k8s.apps.v1.Deployment) -> None:
        s = self._args.settings
        cache = self._args.cache
        address = pulumi.Output.all(cache.host, cache.port).apply(lambda a: f"{a[0]}:{a[1]}")
        k8s.apiextensions.CustomResource(
            f"{self._name}-worker",
            api_version="keda.sh/v1alpha1", kind="ScaledObject",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{NAME}-worker", namespace=self._ns,
                                                labels=self.labels("worker")),
            spec={
                "scaleTargetRef": {"name": worker.metadata.name, "envSourceContainerName":
                                   "worker"},
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
                        "enableTLS": "true" if cache.tls else "false",
                        "passwordFromEnv": "REDIS_PASSWORD", "databaseIndex": "0"}},
                    # Runs waiting on slow LLM calls use little CPU; busy ones use a lot.
                    {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}},
                ],
            },
            opts=self._child())

    def _pdb(self, component: str) -> None:
        k8s.policy.v1.PodDisruptionBudget(
            f"{self._name}-{component}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{NAME}-{component}", namespace=self._ns,
                                                labels=self.labels(component)),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=self.selector(component)),
                # A crash-looping pod must not block node drains.
                unhealthy_pod_eviction_policy="AlwaysAllow"),
            opts=self._child())


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


def alb_annotations(scheme: str, certificate_arn: str | None,
                    tags: Mapping[str, str]) -> dict[str, str]:
    """AWS Load Balancer Controller settings: ip targets, health on /health, TLS 1.2+ with
    HTTP redirected to HTTPS when a certificate is given, long idle timeout for SSE streams."""
    prefix = "alb.ingress.kubernetes.io"
    annotations = {
        f"{prefix}/scheme": scheme,
        f"{prefix}/target-type": "ip",
        f"{prefix}/healthcheck-path": "/health",
        f"{prefix}/success-codes": "200",
        f"{prefix}/load-balancer-attributes":
            "idle_timeout.timeout_seconds=300,"
            "routing.http.drop_invalid_header_fields.enabled=true",
        f"{prefix}/target-group-attributes": "deregistration_delay.timeout_seconds=30",
        f"{prefix}/listen-ports": json.dumps([{"HTTP": 80}]),
    }
    if certificate_arn:
        annotations.update({
            f"{prefix}/listen-ports": json.dumps([{"HTTP": 80}, {"HTTPS": 443}]),
            f"{prefix}/ssl-redirect": "443",
            f"{prefix}/certificate-arn": certificate_arn,
            f"{prefix}/ssl-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
        })
    if tags:
        annotations[f"{prefix}/tags"] = ",".join(f"{k}={v}" for k, v in sorted(tags.items()))
    return annotations


def _scrape(port: int) -> dict[str, pulumi.Input[str]]:
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port),
            "prometheus.io/path": "/metrics"}

