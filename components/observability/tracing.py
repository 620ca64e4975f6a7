"""Distributed tracing: an OpenTelemetry Collector, and Jaeger when traces stay in the cluster.

The service exports OTLP/HTTP to the collector (a pinned `opentelemetry-collector` chart, two
replicas behind a Service, in the monitoring namespace), which limits its memory, batches, and
forwards either to Jaeger v2 in a `tracing` namespace of its own (restricted pod security, deny
by default, reachable only from the monitoring namespace; badger storage on a volume; a Grafana
data source) or to any OTLP endpoint (Tempo, Honeycomb, a vendor) with an auth header from a
Pulumi secret. Keeping the collector in between means the backend can change without touching
the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.config.tracing import TracingSettings
from components.kubernetes.hardening import restricted_container, restricted_pod
from components.kubernetes.peers import namespace_peer
from components.labels import PLATFORM_LABELS, PSA_RESTRICTED

# 0.158.2: the last 0.158 release the chart repository's index publishes (0.158.3, pinned
# before, never was, so `pulumi up` with tracing on could not find the chart).
COLLECTOR_CHART = ("opentelemetry-collector", "0.158.2",
                   "https://open-telemetry.github.io/opentelemetry-helm-charts")
COLLECTOR_IMAGE = "otel/opentelemetry-collector-k8s"
COLLECTOR_NAME = "otel-collector"
JAEGER_IMAGE = "jaegertracing/jaeger:2.21.0"
JAEGER_UID = 10001
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
HEALTH_CHECK_PORT = 13133
COLLECTOR_METRICS_PORT = 8888
JAEGER_UI_PORT = 16686
AUTH_TOKEN_ENV = "OTLP_AUTH_TOKEN"
JAEGER_NAMESPACE = "tracing"


def collector_endpoint(namespace: str) -> str:
    """The collector's OTLP/HTTP endpoint, known before the collector exists."""
    return f"http://{COLLECTOR_NAME}.{namespace}.svc.cluster.local:{OTLP_HTTP_PORT}"


def jaeger_url() -> str:
    return f"http://jaeger.{JAEGER_NAMESPACE}.svc.cluster.local:{JAEGER_UI_PORT}"


@dataclass(kw_only=True)
class TracingArgs:
    settings: TracingSettings
    namespace: pulumi.Input[str]
    """The monitoring namespace."""
    namespace_name: str
    """The same, as a plain string for DNS names."""
    auth_token: pulumi.Output[str] | None = None
    """Value of the OTLP auth header (backend `otlp`), a Pulumi secret."""
    protect: bool = True
    """Protect Jaeger's StatefulSet (the traces on its volume) from deletion and replacement."""


def _labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": component, "app.kubernetes.io/component": "tracing",
            **PLATFORM_LABELS}


class Tracing(pulumi.ComponentResource):
    """The collector release and, for backend `jaeger`, Jaeger itself."""

    endpoint: str
    """OTLP/HTTP endpoint of the collector, for OTEL_EXPORTER_OTLP_ENDPOINT."""
    jaeger_url: str | None
    """In-cluster URL of the Jaeger UI and API (backend `jaeger`)."""

    def __init__(self, name: str, args: TracingArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:tracing:Tracing", name, None, opts)
        self._name = name
        self._args = args
        s = args.settings
        self.endpoint = collector_endpoint(args.namespace_name)
        self.jaeger_url = None
        auth_secret: pulumi.Output[str] | None = None
        if s.backend == "jaeger":
            # No dependency of the collector on Jaeger: its exporter retries until the backend
            # answers, and a dependency would make a replaced Jaeger replace the collector too.
            self._jaeger()
            self.jaeger_url = jaeger_url()
            exporter: dict[str, Any] = {"otlp/backend": {
                "endpoint": f"jaeger.{JAEGER_NAMESPACE}.svc.cluster.local:{OTLP_GRPC_PORT}",
                "tls": {"insecure": True}}}
        else:
            exporter = {"otlphttp/backend": {"endpoint": s.otlp_endpoint}}
            if s.otlp_auth_header:
                exporter["otlphttp/backend"]["headers"] = {
                    s.otlp_auth_header: f"${{env:{AUTH_TOKEN_ENV}}}"}
                auth_secret = self._auth_secret()
        k8s.helm.v3.Release(
            f"{name}-collector", name=COLLECTOR_NAME, chart=COLLECTOR_CHART[0],
            version=COLLECTOR_CHART[1],
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=COLLECTOR_CHART[2]),
            namespace=args.namespace, values=self.collector_values(exporter, auth_secret),
            atomic=True, cleanup_on_fail=True, timeout=600,
            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"endpoint": self.endpoint})

    @staticmethod
    def collector_values(exporter: dict[str, Any],
                         auth_secret: pulumi.Input[str] | None = None) -> dict[str, Any]:
        values: dict[str, Any] = {
            "fullnameOverride": COLLECTOR_NAME,
            "mode": "deployment",
            "replicaCount": 2,
            "image": {"repository": COLLECTOR_IMAGE},
            "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                          "limits": {"memory": "512Mi"}},
            # The whole collector configuration, used as it is: the chart merges `config` into
            # defaults with metrics and logs pipelines nobody reads, and removing those takes
            # nulls, which do not reliably survive into Helm's values (pulumi-kubernetes#3178).
            "alternateConfig": {
                "extensions": {"health_check": {
                    "endpoint": f"${{env:MY_POD_IP}}:{HEALTH_CHECK_PORT}"}},
                "receivers": {"otlp": {"protocols": {
                    "grpc": {"endpoint": f"${{env:MY_POD_IP}}:{OTLP_GRPC_PORT}"},
                    "http": {"endpoint": f"${{env:MY_POD_IP}}:{OTLP_HTTP_PORT}"}}}},
                "processors": {
                    "memory_limiter": {"check_interval": "1s", "limit_percentage": 80,
                                       "spike_limit_percentage": 25},
                    "batch": {}},
                "exporters": exporter,
                "service": {
                    # The chart's liveness and readiness probes ask this extension.
                    "extensions": ["health_check"],
                    "pipelines": {"traces": {"receivers": ["otlp"],
                                             "processors": ["memory_limiter", "batch"],
                                             "exporters": list(exporter)}},
                    "telemetry": {"metrics": {"readers": [{"pull": {"exporter": {"prometheus": {
                        "host": "${env:MY_POD_IP}", "port": COLLECTOR_METRICS_PORT}}}}]}}},
            },
        }
        if auth_secret is not None:
            values["extraEnvs"] = [{"name": AUTH_TOKEN_ENV, "valueFrom": {"secretKeyRef": {
                "name": auth_secret, "key": "token"}}}]
        return values

    def _auth_secret(self) -> pulumi.Output[str]:
        token = self._args.auth_token
        assert token is not None, "checked by the settings"
        # Auto-named and passed to the chart by name: a rotated token is a new Secret and a
        # Helm upgrade in place, never a replaced (reinstalled) release.
        return k8s.core.v1.Secret(
            f"{self._name}-auth", metadata=k8s.meta.v1.ObjectMetaArgs(
                namespace=self._args.namespace, labels=_labels(COLLECTOR_NAME)),
            type="Opaque", string_data={"token": token},
            opts=pulumi.ResourceOptions(parent=self)).metadata.name

    def jaeger_config(self) -> dict[str, Any]:
        retention = f"{self._args.settings.retention_hours}h"
        return {
            "service": {
                "extensions": ["jaeger_storage", "jaeger_query"],
                "pipelines": {"traces": {"receivers": ["otlp"], "processors": ["batch"],
                                         "exporters": ["jaeger_storage_exporter"]}},
            },
            "extensions": {
                "jaeger_storage": {"backends": {"main": {"badger": {
                    "directories": {"keys": "/badger/keys", "values": "/badger/values"},
                    "ephemeral": False, "ttl": {"spans": retention}}}}},
                "jaeger_query": {"storage": {"traces": "main"}},
            },
            "receivers": {"otlp": {"protocols": {
                "grpc": {"endpoint": f"0.0.0.0:{OTLP_GRPC_PORT}"},
                "http": {"endpoint": f"0.0.0.0:{OTLP_HTTP_PORT}"}}}},
            "processors": {"batch": {}},
            "exporters": {"jaeger_storage_exporter": {"trace_storage": "main"}},
        }

    def _jaeger_namespace(self) -> pulumi.Output[str]:
        namespace = k8s.core.v1.Namespace(
            f"{self._name}-namespace", metadata=k8s.meta.v1.ObjectMetaArgs(
                name=JAEGER_NAMESPACE, labels={**PSA_RESTRICTED, **PLATFORM_LABELS}),
            opts=pulumi.ResourceOptions(parent=self))
        name = namespace.metadata.name
        policy = k8s.networking.v1.NetworkPolicySpecArgs
        k8s.networking.v1.NetworkPolicy(
            f"{self._name}-default-deny", metadata=k8s.meta.v1.ObjectMetaArgs(
                name="default-deny", namespace=name),
            spec=policy(pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                        policy_types=["Ingress", "Egress"]),
            opts=pulumi.ResourceOptions(parent=self))
        # The collector sends spans and Grafana queries them; Jaeger itself calls nothing.
        k8s.networking.v1.NetworkPolicy(
            f"{self._name}-jaeger-ingress", metadata=k8s.meta.v1.ObjectMetaArgs(
                name="jaeger-ingress", namespace=name),
            spec=policy(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=_labels("jaeger")),
                policy_types=["Ingress"],
                ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[namespace_peer(self._args.namespace_name)],
                    ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=p)
                           for p in (OTLP_GRPC_PORT, JAEGER_UI_PORT)])]),
            opts=pulumi.ResourceOptions(parent=self))
        return name

    def _jaeger(self) -> k8s.apps.v1.StatefulSet:
        labels = _labels("jaeger")
        namespace = self._jaeger_namespace()
        # Auto-named: a new config is a new ConfigMap whose name rolls the StatefulSet in place.
        config = k8s.core.v1.ConfigMap(
            f"{self._name}-jaeger-config", metadata=k8s.meta.v1.ObjectMetaArgs(
                namespace=namespace, labels=labels),
            data={"config.yaml": yaml.safe_dump(self.jaeger_config(), sort_keys=False)},
            opts=pulumi.ResourceOptions(parent=self))
        k8s.core.v1.Service(
            f"{self._name}-jaeger", metadata=k8s.meta.v1.ObjectMetaArgs(
                name="jaeger", namespace=namespace, labels=labels),
            spec=k8s.core.v1.ServiceSpecArgs(type="ClusterIP", selector=labels, ports=[
                k8s.core.v1.ServicePortArgs(name="otlp-grpc", port=OTLP_GRPC_PORT,
                                            target_port="otlp-grpc"),
                k8s.core.v1.ServicePortArgs(name="ui", port=JAEGER_UI_PORT, target_port="ui")]),
            opts=pulumi.ResourceOptions(parent=self))
        probe = k8s.core.v1.ProbeArgs(tcp_socket=k8s.core.v1.TCPSocketActionArgs(port="ui"),
                                      period_seconds=10)
        return k8s.apps.v1.StatefulSet(
            f"{self._name}-jaeger",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="jaeger", namespace=namespace,
                                                labels=labels),
            spec=k8s.apps.v1.StatefulSetSpecArgs(
                service_name="jaeger", replicas=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        automount_service_account_token=False,
                        security_context=restricted_pod(JAEGER_UID),
                        containers=[k8s.core.v1.ContainerArgs(
                            name="jaeger", image=JAEGER_IMAGE,
                            args=["--config", "/etc/jaeger/config.yaml"],
                            ports=[k8s.core.v1.ContainerPortArgs(name="otlp-grpc",
                                                                 container_port=OTLP_GRPC_PORT),
                                   k8s.core.v1.ContainerPortArgs(name="ui",
                                                                 container_port=JAEGER_UI_PORT)],
                            readiness_probe=probe, liveness_probe=probe,
                            resources=k8s.core.v1.ResourceRequirementsArgs(
                                requests={"cpu": "100m", "memory": "512Mi"},
                                limits={"memory": "2Gi"}),
                            security_context=restricted_container(),
                            volume_mounts=[
                                k8s.core.v1.VolumeMountArgs(name="data", mount_path="/badger"),
                                k8s.core.v1.VolumeMountArgs(name="config",
                                                            mount_path="/etc/jaeger")])],
                        volumes=[k8s.core.v1.VolumeArgs(
                            name="config", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(
                                name=config.metadata.name))])),
                volume_claim_templates=[k8s.core.v1.PersistentVolumeClaimArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(name="data"),
                    spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                        access_modes=["ReadWriteOnce"],
                        resources=k8s.core.v1.VolumeResourceRequirementsArgs(
                            requests={"storage": self._args.settings.storage_size})))]),
            opts=pulumi.ResourceOptions(parent=self, protect=self._args.protect))
