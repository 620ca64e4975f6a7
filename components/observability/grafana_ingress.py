"""Grafana on its own name (`grafanaDomainName`): an HTTPS ALB Ingress the program owns.

Not the chart's Ingress: the program needs the address the load balancer controller gives the
Ingress to write Grafana's DNS record, and only an Ingress that is a resource of the stack has
one it can read. Grafana's own login stands in front of it (anonymous access is off).
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes.alb import load_balancer_hostname
from components.labels import PLATFORM_LABELS

GRAFANA_PORT = 80


def grafana_domain_ingress(name: str, namespace: pulumi.Input[str], domain: str,
                           service: str, annotations: Mapping[str, pulumi.Input[str]],
                           opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    """The Ingress; returns the ALB's DNS name once the controller has made it."""
    ingress = k8s.networking.v1.Ingress(
        name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            namespace=namespace,
            labels={"app.kubernetes.io/name": "grafana", **PLATFORM_LABELS},
            annotations={**annotations,
                         "alb.ingress.kubernetes.io/healthcheck-path": "/api/health"}),
        spec=k8s.networking.v1.IngressSpecArgs(
            ingress_class_name="alb",
            rules=[k8s.networking.v1.IngressRuleArgs(
                host=domain,
                http=k8s.networking.v1.HTTPIngressRuleValueArgs(paths=[
                    k8s.networking.v1.HTTPIngressPathArgs(
                        path="/", path_type="Prefix",
                        backend=k8s.networking.v1.IngressBackendArgs(
                            service=k8s.networking.v1.IngressServiceBackendArgs(
                                name=service, port=k8s.networking.v1.ServiceBackendPortArgs(
                                    number=GRAFANA_PORT))))]))]),
        opts=opts)
    return ingress.status.apply(load_balancer_hostname)
