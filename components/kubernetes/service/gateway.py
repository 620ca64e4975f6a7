"""The API through the Gateway API (`edge: gateway`): a Gateway of `gatewayClassName` and the
HTTPRoutes to the API's Service, with the same host and TLS an Ingress would have.

With TLS the Gateway listens on 443 and 80, and the route on 80 only redirects to HTTPS, as an
Ingress with TLS does; without, plain HTTP on 80 (refused in prod). The Gateway's name is fixed
so the routes can name it: its changes are updates in place, and nothing replaces it.

On AWS the class is the ALB's (the program creates it, components/aws/load_balancer_controller
.py): the load balancer's settings and certificate are a LoadBalancerConfiguration the Gateway
names, the target group's a TargetGroupConfiguration of the Service, both the same as the
Ingress's annotations (components/kubernetes/alb.py). `pulumi up` waits for the Gateway to be
Programmed, which the controller reports once the ALB is active, so the DNS record that follows
finds it. Elsewhere the TLS certificate is the Secret `ingressTlsSecret`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pulumi_kubernetes as k8s

from components.kubernetes.alb import alb_gateway_configuration, alb_target_group_configuration
from components.kubernetes.service.context import NAME, ServiceContext
from components.manifests import ALB_GATEWAY_API, GATEWAY_API

# pulumi-kubernetes: the Gateway is ready when its controller reports it Programmed (for the
# same generation: Gateway conditions carry observedGeneration as an integer).
WAIT_FOR_PROGRAMMED = {"pulumi.com/waitFor": "condition=Programmed"}


class ApiGateway(NamedTuple):
    key: str
    """`namespace/name`: how the load balancer controller tags the ALB it made for it."""
    resource: k8s.apiextensions.CustomResource


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


def _alb_configurations(ctx: ServiceContext, gateway_name: str,
                        service_name: str) -> dict[str, Any]:
    """The ALB's and its target group's settings; returns the Gateway's `infrastructure`."""
    ingress = ctx.settings.ingress
    k8s.apiextensions.CustomResource(
        f"{ctx.name}-api-load-balancer", api_version=ALB_GATEWAY_API,
        kind="LoadBalancerConfiguration", metadata=ctx.metadata("api", name=gateway_name),
        spec=alb_gateway_configuration(ingress.scheme,
                                       ctx.args.certificate_arn or ingress.certificate_arn,
                                       ctx.args.aws_tags),
        opts=ctx.child())
    k8s.apiextensions.CustomResource(
        f"{ctx.name}-api-target-group", api_version=ALB_GATEWAY_API,
        kind="TargetGroupConfiguration", metadata=ctx.metadata("api", name=service_name),
        spec=alb_target_group_configuration(service_name), opts=ctx.child())
    return {"parametersRef": {"group": "gateway.k8s.aws", "kind": "LoadBalancerConfiguration",
                              "name": gateway_name}}


def api_gateway(ctx: ServiceContext, service_name: str) -> ApiGateway:
    """The Gateway and its routes."""
    ingress = ctx.settings.ingress
    gateway_name = f"{NAME}-api"
    spec: dict[str, Any] = {"gatewayClassName": ingress.gateway_class}
    annotations: dict[str, str] | None = None
    if ingress.alb:
        spec["infrastructure"] = _alb_configurations(ctx, gateway_name, service_name)
        annotations = WAIT_FOR_PROGRAMMED
    spec["listeners"] = [_listener("http", "HTTP", 80, ingress.host)]
    if ingress.tls:
        # The ALB's certificate is in its LoadBalancerConfiguration, not on the listener.
        spec["listeners"].append(_listener("https", "HTTPS", 443, ingress.host,
                                           None if ingress.alb else ingress.tls_secret))
    gateway = k8s.apiextensions.CustomResource(
        f"{ctx.name}-api-gateway", api_version=GATEWAY_API, kind="Gateway",
        metadata=ctx.metadata("api", name=gateway_name, annotations=annotations),
        spec=spec, opts=ctx.child())
    hostnames = {"hostnames": [ingress.host]} if ingress.host else {}
    forward = {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
               "backendRefs": [{"name": service_name, "port": 80}]}
    after = ctx.child(depends_on=[gateway])
    if ingress.tls:
        k8s.apiextensions.CustomResource(
            f"{ctx.name}-api-redirect", api_version=GATEWAY_API, kind="HTTPRoute",
            metadata=ctx.metadata("api"),
            spec={"parentRefs": [{"name": gateway_name, "sectionName": "http"}], **hostnames,
                  "rules": [{"filters": [{"type": "RequestRedirect", "requestRedirect": {
                      "scheme": "https", "statusCode": 301}}]}]},
            opts=after)
    k8s.apiextensions.CustomResource(
        f"{ctx.name}-api-route", api_version=GATEWAY_API, kind="HTTPRoute",
        metadata=ctx.metadata("api"),
        spec={"parentRefs": [{"name": gateway_name,
                              "sectionName": "https" if ingress.tls else "http"}],
              **hostnames, "rules": [forward]},
        opts=after)
    return ApiGateway(f"{ctx.settings.namespace}/{gateway_name}", gateway)
