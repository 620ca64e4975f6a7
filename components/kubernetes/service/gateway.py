"""The API through the Gateway API (`edge: gateway`): a Gateway of `gatewayClassName` and the
HTTPRoutes to the API's Service, with the same host and TLS Secret an Ingress would have.

With a TLS Secret the Gateway listens on 443 and 80, and the route on 80 only redirects to
HTTPS, as an Ingress with TLS does; without one, plain HTTP on 80 (refused in prod). The
Gateway's name is fixed so the routes can name it: its changes are updates in place, and nothing
replaces it.
"""

from __future__ import annotations

from typing import Any

import pulumi_kubernetes as k8s

from components.kubernetes.service.context import NAME, ServiceContext

API_VERSION = "gateway.networking.k8s.io/v1"


def _listener(name: str, protocol: str, port: int, host: str | None,
              tls_secret: str | None = None) -> dict[str, Any]:
    listener: dict[str, Any] = {"name": name, "protocol": protocol, "port": port,
                                "allowedRoutes": {"namespaces": {"from": "Same"}}}
    if host:
        listener["hostname"] = host
    if tls_secret:
        listener["tls"] = {"mode": "Terminate",
                           "certificateRefs": [{"kind": "Secret", "name": tls_secret}]}
    return listener


def api_gateway(ctx: ServiceContext, service_name: str) -> None:
    ingress = ctx.settings.ingress
    gateway_name = f"{NAME}-api"
    listeners = [_listener("http", "HTTP", 80, ingress.host)]
    if ingress.tls_secret:
        listeners.append(_listener("https", "HTTPS", 443, ingress.host, ingress.tls_secret))
    gateway = k8s.apiextensions.CustomResource(
        f"{ctx.name}-api-gateway", api_version=API_VERSION, kind="Gateway",
        metadata=ctx.metadata("api", name=gateway_name),
        spec={"gatewayClassName": ingress.gateway_class, "listeners": listeners},
        opts=ctx.child())
    hostnames = {"hostnames": [ingress.host]} if ingress.host else {}
    forward = {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
               "backendRefs": [{"name": service_name, "port": 80}]}
    after = ctx.child(depends_on=[gateway])
    if ingress.tls_secret:
        k8s.apiextensions.CustomResource(
            f"{ctx.name}-api-redirect", api_version=API_VERSION, kind="HTTPRoute",
            metadata=ctx.metadata("api"),
            spec={"parentRefs": [{"name": gateway_name, "sectionName": "http"}], **hostnames,
                  "rules": [{"filters": [{"type": "RequestRedirect", "requestRedirect": {
                      "scheme": "https", "statusCode": 301}}]}]},
            opts=after)
    k8s.apiextensions.CustomResource(
        f"{ctx.name}-api-route", api_version=API_VERSION, kind="HTTPRoute",
        metadata=ctx.metadata("api"),
        spec={"parentRefs": [{"name": gateway_name,
                              "sectionName": "https" if ingress.tls_secret else "http"}],
              **hostnames, "rules": [forward]},
        opts=after)
