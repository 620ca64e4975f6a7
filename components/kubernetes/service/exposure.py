"""How the API is reached: a ClusterIP Service, and an Ingress when the stack enables one."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes.alb import alb_annotations, load_balancer_hostname
from components.kubernetes.service.context import NAME, ServiceContext

# pulumi-kubernetes: create or update the object without waiting for it to become ready.
SKIP_AWAIT = "pulumi.com/skipAwait"


def api_service(ctx: ServiceContext) -> str:
    name = f"{NAME}-api"
    k8s.core.v1.Service(
        f"{ctx.name}-api", metadata=ctx.metadata("api", name=name),
        spec=k8s.core.v1.ServiceSpecArgs(
            type="ClusterIP", selector=ctx.selector("api"),
            ports=[k8s.core.v1.ServicePortArgs(name="http", port=80, target_port="http",
                                               protocol="TCP")]),
        opts=ctx.child())
    return name


def api_ingress(ctx: ServiceContext, service_name: str, port: str = "http",
                after: list[pulumi.Resource] | None = None) -> pulumi.Output[str]:
    """The Ingress; returns the address its controller gives it (the ALB's DNS name).

    With progressive releases the backend is the Rollout's: for a canary on an ALB the port is
    `use-annotation`, which tells the ALB controller to follow the forward action the Rollout
    writes into this Ingress (`alb.ingress.kubernetes.io/actions.<service>`: the stable and canary
    Services' weights; the program never writes it); for blue-green the active Service. `after`
    is the release gate, so the Ingress changes only once the Rollouts made what it names.
    """
    ingress = ctx.settings.ingress
    tls = None
    annotations: dict[str, pulumi.Input[str]]
    if ingress.alb:
        annotations = alb_annotations(ingress.scheme,
                                      ctx.args.certificate_arn or ingress.certificate_arn,
                                      ctx.args.aws_tags)
    else:
        # The program installs the ALB controller itself, so an ALB Ingress is awaited until it
        # has an address. Any other class belongs to a controller the cluster may not have
        # (kind, minikube and Docker Desktop ship none), and some controllers never publish an
        # address at all: waiting would hang `pulumi up` for ten minutes, then fail.
        annotations = {SKIP_AWAIT: "true"}
        if ingress.tls_secret:
            tls = [k8s.networking.v1.IngressTLSArgs(
                hosts=[ingress.host] if ingress.host else None, secret_name=ingress.tls_secret)]
    created = k8s.networking.v1.Ingress(
        f"{ctx.name}-api", metadata=ctx.metadata("api", name=f"{NAME}-api",
                                                 annotations=annotations),
        spec=k8s.networking.v1.IngressSpecArgs(
            ingress_class_name=ingress.class_name, tls=tls,
            rules=[k8s.networking.v1.IngressRuleArgs(
                host=ingress.host,
                http=k8s.networking.v1.HTTPIngressRuleValueArgs(paths=[
                    k8s.networking.v1.HTTPIngressPathArgs(
                        path="/", path_type="Prefix",
                        backend=k8s.networking.v1.IngressBackendArgs(
                            service=k8s.networking.v1.IngressServiceBackendArgs(
                                name=service_name,
                                port=k8s.networking.v1.ServiceBackendPortArgs(
                                    name=port))))]))]),
        opts=ctx.child(depends_on=after))
    return created.status.apply(load_balancer_hostname)


def api_url(ctx: ServiceContext) -> str | None:
    """The API's URL when an Ingress with a host is configured."""
    ingress = ctx.settings.ingress
    if not (ingress.enabled and ingress.host):
        return None
    return f"{'https' if ingress.tls else 'http'}://{ingress.host}"
