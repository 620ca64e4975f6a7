"""Monitoring as code: kube-prometheus-stack, the service's monitors, rules and dashboards.

The chart is installed as a `kubernetes.helm.v3.Release`, not `helm.v4.Chart`: Helm installs the
chart's CRDs before anything that uses them and runs the chart's hooks (the admission webhook's
certificate jobs), and `pulumi preview` does not need a reachable cluster to render it. The
ServiceMonitor, PodMonitor and PrometheusRule are separate Pulumi resources that depend on the
release, so their diffs show in previews like any other object.

Prometheus selects monitors and rules by one label, `release: kube-prometheus-stack`, which the
chart's own monitors carry too. The selector in the chart values and the labels on our objects
come from the same constant (`SELECTOR`), so a monitor cannot be silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml

from components.config.monitoring import MonitoringSettings
from components.config.service import IngressSettings
from components.kubernetes.alb import alb_annotations
from components.kubernetes.rollouts_controller import METRICS_SELECTOR as ROLLOUTS_METRICS_SELECTOR
from components.kubernetes.service.canary_checks import HASH_LABEL as ROLLOUT_HASH_LABEL
from components.labels import PLATFORM_LABELS
from components.observability.alert_rules import rule_groups
from components.observability.alertmanager_config import alertmanager_config
from components.observability.dashboards import DATASOURCE_UID, dashboards
from components.observability.grafana_ingress import grafana_domain_ingress

PROMETHEUS_STACK_CHART = ("kube-prometheus-stack", "79.10.0",
                          "https://prometheus-community.github.io/helm-charts")
RELEASE = "kube-prometheus-stack"
SELECTOR = {"release": RELEASE}
DASHBOARD_LABEL = ("grafana_dashboard", "1")


@dataclass(kw_only=True)
class MonitoringArgs:
    settings: MonitoringSettings
    namespace: str
    """Namespace of the monitoring stack (the service's NetworkPolicies admit it)."""
    service_namespace: pulumi.Input[str]
    """Namespace of the agent service."""
    service_namespace_name: str
    """The same, as a plain string for rule selectors."""
    api_selector: Mapping[str, str]
    """Labels of the API Service and pods."""
    worker_selector: Mapping[str, str]
    """Labels of the worker pods."""
    managed_control_plane: bool
    """EKS: scheduler, controller manager, etcd and kube-proxy metrics are not reachable."""
    ingress: IngressSettings
    """Class and TLS for Grafana's Ingress, shared with the service's."""
    receiver_secrets: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    """alertSlackWebhookUrl, alertPagerdutyRoutingKey, alertSmtpPassword when set."""
    aws_tags: Mapping[str, str] = field(default_factory=dict)
    jaeger_url: str | None = None
    """Jaeger's query URL, added to Grafana as a data source when traces stay in-cluster."""
    grafana_certificate_arn: pulumi.Input[str] | None = None
    """The certificate made for `grafanaDomainName`: Grafana gets an HTTPS Ingress of its own."""
    rollouts_namespace: str | None = None
    """Where the Argo Rollouts controller runs, when the service is released as canaries: its
    metrics are scraped, and the service's series carry each pod's release (its pod-template
    hash), which the canary analyses compare."""


class Monitoring(pulumi.ComponentResource):
    """kube-prometheus-stack plus the agent service's ServiceMonitor, PodMonitor,
    PrometheusRule and Grafana dashboards."""

    grafana_admin_password: pulumi.Output[str]
    namespace: pulumi.Output[str]
    grafana_load_balancer_hostname: pulumi.Output[str] | None = None
    """The ALB's DNS name for `grafanaDomainName`, once the controller has made it."""

    def __init__(self, name: str, args: MonitoringArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:monitoring:Monitoring", name, None, opts)
        self._name = name
        self._args = args
        m = args.settings
        if not m.has_receiver:
            pulumi.log.warn("no alert receiver is configured (alertSlackWebhookUrl, "
                            "alertPagerdutyRoutingKey or alertEmailTo): alerts are only visible "
                            "in Alertmanager and Grafana", self)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.namespace, labels={
                    # node-exporter reads the host's /proc and /sys with hostPID and
                    # hostNetwork, which only the privileged level admits.
                    "pod-security.kubernetes.io/enforce": "privileged",
                    "pod-security.kubernetes.io/warn": "baseline",
                    **PLATFORM_LABELS}),
            opts=self._child())
        self._ns = namespace.metadata.name
        self.namespace = self._ns

        password = random.RandomPassword(f"{name}-grafana-password", length=32, special=False,
                                         opts=self._child())
        self.grafana_admin_password = pulumi.Output.secret(password.result)
        # Both Secrets are auto-named and handed to the chart by their output names: a new
        # receiver or password makes a new Secret (created before the old one is deleted) and a
        # Helm upgrade in place. A fixed name would be replaced delete-before-replace, and the
        # engine would replace (uninstall and reinstall) the whole release with it.
        grafana_secret = k8s.core.v1.Secret(
            f"{name}-grafana-admin", metadata=k8s.meta.v1.ObjectMetaArgs(namespace=self._ns),
            type="Opaque", string_data={"admin-user": "admin",
                                        "admin-password": password.result},
            opts=self._child())
        credentials: pulumi.Output[Any] = pulumi.Output.all(**args.receiver_secrets) \
            if args.receiver_secrets else pulumi.Output.from_input({})
        receivers: pulumi.Output[str] = pulumi.Output.secret(credentials.apply(
            lambda values: yaml.safe_dump(alertmanager_config(m, values), sort_keys=False)))
        alertmanager_secret = k8s.core.v1.Secret(
            f"{name}-alertmanager-config", metadata=k8s.meta.v1.ObjectMetaArgs(
                namespace=self._ns),
            type="Opaque", string_data={"alertmanager.yaml": receivers},
            opts=self._child())

        release = k8s.helm.v3.Release(
            f"{name}-kube-prometheus-stack",
            name=RELEASE, chart=PROMETHEUS_STACK_CHART[0], version=PROMETHEUS_STACK_CHART[1],
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=PROMETHEUS_STACK_CHART[2]),
            namespace=self._ns,
            values=self.chart_values(grafana_secret.metadata.name,
                                     alertmanager_secret.metadata.name),
            atomic=True, cleanup_on_fail=True, timeout=900, opts=self._child())

        after_release = self._child(depends_on=[release])
        self._monitors(after_release)
        k8s.apiextensions.CustomResource(
            f"{name}-rules", api_version="monitoring.coreos.com/v1", kind="PrometheusRule",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="agent-service", namespace=self._ns,
                                                labels={**SELECTOR, **PLATFORM_LABELS}),
            spec={"groups": rule_groups(m.alerts, args.service_namespace_name)},
            opts=after_release)
        for filename, document in dashboards(args.service_namespace_name).items():
            k8s.core.v1.ConfigMap(
                f"{name}-dashboard-{filename.removesuffix('.json')}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=filename.removesuffix(".json"), namespace=self._ns,
                    labels={DASHBOARD_LABEL[0]: DASHBOARD_LABEL[1], **PLATFORM_LABELS}),
                data={filename: document}, opts=self._child())
        if m.grafana_domain and args.grafana_certificate_arn:
            self.grafana_load_balancer_hostname = grafana_domain_ingress(
                f"{name}-grafana", self._ns, m.grafana_domain, f"{RELEASE}-grafana",
                alb_annotations(args.ingress.scheme, args.grafana_certificate_arn,
                                args.aws_tags), after_release)
        self.register_outputs({"grafana_admin_password": self.grafana_admin_password})

    def _child(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def chart_values(self, grafana_secret: pulumi.Input[str],
                     alertmanager_secret: pulumi.Input[str]) -> dict[str, Any]:
        args, m = self._args, self._args.settings
        selector = {"matchLabels": SELECTOR}
        prometheus_spec: dict[str, Any] = {
            "replicas": m.replicas,
            "retention": m.retention,
            "serviceMonitorSelector": selector, "serviceMonitorNamespaceSelector": {},
            "podMonitorSelector": selector, "podMonitorNamespaceSelector": {},
            "ruleSelector": selector, "ruleNamespaceSelector": {},
            "resources": {"requests": {"cpu": "500m", "memory": "2Gi"},
                          "limits": {"memory": "4Gi"}},
        }
        if m.storage_size:
            prometheus_spec["storageSpec"] = {"volumeClaimTemplate": {"spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": m.storage_size}}}}}
        alertmanager_spec: dict[str, Any] = {
            "replicas": m.replicas, "useExistingSecret": True,
            "configSecret": alertmanager_secret}
        if m.storage_size:
            # Silences and the notification log survive a restart.
            alertmanager_spec["storage"] = {"volumeClaimTemplate": {"spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}}}
        values: dict[str, Any] = {
            "fullnameOverride": RELEASE,
            "prometheus": {"prometheusSpec": prometheus_spec},
            "alertmanager": {"alertmanagerSpec": alertmanager_spec},
            "grafana": {
                "admin": {"existingSecret": grafana_secret, "userKey": "admin-user",
                          "passwordKey": "admin-password"},
                "sidecar": {
                    "dashboards": {"enabled": True, "label": DASHBOARD_LABEL[0],
                                   "labelValue": DASHBOARD_LABEL[1], "searchNamespace": "ALL"},
                    "datasources": {"enabled": True, "uid": DATASOURCE_UID}},
                "ingress": self._grafana_ingress(),
            },
        }
        if args.jaeger_url:
            values["grafana"]["additionalDataSources"] = [{
                "name": "Jaeger", "type": "jaeger", "uid": "jaeger", "access": "proxy",
                "url": args.jaeger_url}]
        if args.managed_control_plane:
            # The managed control plane exposes none of these to scrapers, so their targets
            # would be down and their default alerts would fire forever.
            for component in ("kubeScheduler", "kubeControllerManager", "kubeEtcd", "kubeProxy"):
                values[component] = {"enabled": False}
            values["defaultRules"] = {"rules": {
                "etcd": False, "kubeSchedulerAlerting": False, "kubeSchedulerRecording": False,
                "kubeControllerManager": False, "kubeProxy": False}}
        return values

    def _grafana_ingress(self) -> dict[str, Any]:
        m, ingress = self._args.settings, self._args.ingress
        if not m.grafana_host:
            return {"enabled": False}
        spec: dict[str, Any] = {"enabled": True, "ingressClassName": ingress.class_name,
                                "hosts": [m.grafana_host], "path": "/"}
        if ingress.alb:
            spec["annotations"] = alb_annotations(ingress.scheme, ingress.certificate_arn,
                                                  self._args.aws_tags)
            spec["annotations"]["alb.ingress.kubernetes.io/healthcheck-path"] = "/api/health"
        elif ingress.tls_secret:
            spec["tls"] = [{"hosts": [m.grafana_host], "secretName": ingress.tls_secret}]
        return spec

    def _monitors(self, opts: pulumi.ResourceOptions) -> None:
        args = self._args
        labels = {**SELECTOR, **PLATFORM_LABELS}
        # `rollouts-pod-template-hash` becomes the series' `rollouts_pod_template_hash`.
        release = {"podTargetLabels": [ROLLOUT_HASH_LABEL]} if args.rollouts_namespace else {}
        k8s.apiextensions.CustomResource(
            f"{self._name}-api-monitor", api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="agent-service-api",
                                                namespace=args.service_namespace, labels=labels),
            spec={"selector": {"matchLabels": dict(args.api_selector)},
                  "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s",
                                 "scrapeTimeout": "10s"}], **release},
            opts=opts)
        k8s.apiextensions.CustomResource(
            f"{self._name}-worker-monitor", api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="agent-service-worker",
                                                namespace=args.service_namespace, labels=labels),
            spec={"selector": {"matchLabels": dict(args.worker_selector)},
                  "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics",
                                           "interval": "30s", "scrapeTimeout": "10s"}],
                  **release},
            opts=opts)
        if args.rollouts_namespace:
            k8s.apiextensions.CustomResource(
                f"{self._name}-rollouts-monitor", api_version="monitoring.coreos.com/v1",
                kind="ServiceMonitor",
                metadata=k8s.meta.v1.ObjectMetaArgs(name="argo-rollouts",
                                                    namespace=args.rollouts_namespace,
                                                    labels=labels),
                spec={"selector": {"matchLabels": ROLLOUTS_METRICS_SELECTOR},
                      # Its series name the Rollout's namespace; keep it over the target's.
                      "endpoints": [{"port": "metrics", "interval": "30s",
                                     "honorLabels": True}]},
                opts=opts)
