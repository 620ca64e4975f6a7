"""AWS Load Balancer Controller settings shared by every ALB Ingress of the platform."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

# Long enough for a research run's event stream between two events; the API's own keep-alive
# outlasts it (agent_service.cli.KEEP_ALIVE_SECONDS), so the ALB is the one closing idle ones.
ALB_IDLE_TIMEOUT_SECONDS = 300


def alb_annotations(scheme: str, certificate_arn: pulumi.Input[str] | None,
                    tags: Mapping[str, str]) -> dict[str, pulumi.Input[str]]:
    """AWS Load Balancer Controller settings: ip targets, health on /health, TLS 1.2+ with
    HTTP redirected to HTTPS when a certificate is given, long idle timeout for SSE streams."""
    prefix = "alb.ingress.kubernetes.io"
    annotations: dict[str, pulumi.Input[str]] = {
        f"{prefix}/scheme": scheme,
        f"{prefix}/target-type": "ip",
        f"{prefix}/healthcheck-path": "/health",
        f"{prefix}/success-codes": "200",
        f"{prefix}/load-balancer-attributes":
            f"idle_timeout.timeout_seconds={ALB_IDLE_TIMEOUT_SECONDS},"
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


def load_balancer_hostname(status: k8s.networking.v1.outputs.IngressStatus | None) -> str:
    """The address the load balancer controller gave an Ingress (the ALB's DNS name), or ""."""
    entries = (status.load_balancer.ingress if status and status.load_balancer else None) or []
    return (entries[0].hostname or "") if entries else ""
