"""AWS Load Balancer Controller settings shared by every ALB of the platform: as Ingress
annotations, and as the LoadBalancerConfiguration and TargetGroupConfiguration of a Gateway."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

# Long enough for a research run's event stream between two events; the API's own keep-alive
# outlasts it (agent_service.cli.KEEP_ALIVE_SECONDS), so the ALB is the one closing idle ones.
ALB_IDLE_TIMEOUT_SECONDS = 300
# TLS 1.3 and 1.2 only, forward-secret ciphers.
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
HEALTH_CHECK_PATH = "/health"
# A stopping pod has left the target group before its grace period ends.
DEREGISTRATION_DELAY_SECONDS = 30
LOAD_BALANCER_ATTRIBUTES = {
    "idle_timeout.timeout_seconds": str(ALB_IDLE_TIMEOUT_SECONDS),
    "routing.http.drop_invalid_header_fields.enabled": "true",
}


def alb_annotations(scheme: str, certificate_arn: pulumi.Input[str] | None,
                    tags: Mapping[str, str]) -> dict[str, pulumi.Input[str]]:
    """AWS Load Balancer Controller settings: ip targets, health on /health, TLS 1.2+ with
    HTTP redirected to HTTPS when a certificate is given, long idle timeout for SSE streams."""
    prefix = "alb.ingress.kubernetes.io"
    annotations: dict[str, pulumi.Input[str]] = {
        f"{prefix}/scheme": scheme,
        f"{prefix}/target-type": "ip",
        f"{prefix}/healthcheck-path": HEALTH_CHECK_PATH,
        f"{prefix}/success-codes": "200",
        f"{prefix}/load-balancer-attributes":
            ",".join(f"{k}={v}" for k, v in LOAD_BALANCER_ATTRIBUTES.items()),
        f"{prefix}/target-group-attributes":
            f"deregistration_delay.timeout_seconds={DEREGISTRATION_DELAY_SECONDS}",
        f"{prefix}/listen-ports": json.dumps([{"HTTP": 80}]),
    }
    if certificate_arn:
        annotations.update({
            f"{prefix}/listen-ports": json.dumps([{"HTTP": 80}, {"HTTPS": 443}]),
            f"{prefix}/ssl-redirect": "443",
            f"{prefix}/certificate-arn": certificate_arn,
            f"{prefix}/ssl-policy": SSL_POLICY,
        })
    if tags:
        annotations[f"{prefix}/tags"] = ",".join(f"{k}={v}" for k, v in sorted(tags.items()))
    return annotations


def alb_gateway_configuration(scheme: str, certificate_arn: pulumi.Input[str] | None,
                              tags: Mapping[str, str]) -> dict[str, Any]:
    """A Gateway's LoadBalancerConfiguration spec: what `alb_annotations` sets on an Ingress.
    The certificate goes here: the controller ignores a Gateway listener's certificateRefs."""
    spec: dict[str, Any] = {
        "scheme": scheme,
        "loadBalancerAttributes": [{"key": k, "value": v}
                                   for k, v in LOAD_BALANCER_ATTRIBUTES.items()],
    }
    if certificate_arn:
        spec["listenerConfigurations"] = [{"protocolPort": "HTTPS:443",
                                           "defaultCertificate": certificate_arn,
                                           "sslPolicy": SSL_POLICY}]
    if tags:
        spec["tags"] = dict(tags)
    return spec


def alb_target_group_configuration(service_name: str) -> dict[str, Any]:
    """A TargetGroupConfiguration spec for the Service a Gateway routes to: pod IPs as targets,
    health on /health, the same deregistration delay as the Ingress's."""
    return {
        "targetReference": {"name": service_name},
        "defaultConfiguration": {
            "targetType": "ip",
            "healthCheckConfig": {"healthCheckPath": HEALTH_CHECK_PATH,
                                  "matcher": {"httpCode": "200"}},
            "targetGroupAttributes": [{"key": "deregistration_delay.timeout_seconds",
                                       "value": str(DEREGISTRATION_DELAY_SECONDS)}],
        },
    }


def load_balancer_hostname(status: k8s.networking.v1.outputs.IngressStatus | None) -> str:
    """The address the load balancer controller gave an Ingress (the ALB's DNS name), or ""."""
    entries = (status.load_balancer.ingress if status and status.load_balancer else None) or []
    return (entries[0].hostname or "") if entries else ""
