"""The agent service on Kubernetes: one component, built from its parts.

Every stack deploys the same objects; what differs (replicas, sizes, ingress class and TLS, which
peers may talk to the pods) arrives in `AgentServiceArgs`, so nothing here asks which stack it is
on. Pod hardening matches Pod Security Admission `restricted`, which the namespace enforces.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes.service.context import (
    API_PORT,
    NAME,
    WORKER_METRICS_PORT,
    AgentServiceArgs,
    ServiceContext,
    service_selector,
)
from components.kubernetes.service.environment import environment
from components.kubernetes.service.exposure import api_ingress, api_service, api_url
from components.kubernetes.service.gateway import ApiGateway, api_gateway
from components.kubernetes.service.network_policies import (
    ServiceNetworkPolicies,
    ServiceNetworkPoliciesArgs,
)
from components.kubernetes.service.pods import Pods
from components.kubernetes.service.progressive import deployment_target, progressive_rollouts
from components.kubernetes.service.release_gate import GATE, release_gate
from components.kubernetes.service.scaling import autoscale
from components.kubernetes.service.workloads import (
    api_deployment,
    migration_job,
    worker_deployment,
)
from components.labels import DATA_ACCESS_LABEL, PLATFORM_LABELS, PSA_RESTRICTED


class AgentService(pulumi.ComponentResource):
    """Namespace, environment, migration Job, API and worker Deployments, Service, Ingress,
    autoscalers, PDBs and NetworkPolicies of the agent service."""

    namespace: pulumi.Output[str]
    api_service_name: str
    port_forward: str
    """The command that reaches the API from a workstation, whatever the exposure."""
    api_url: str | None
    """The API's public URL when an Ingress with a host is configured."""
    api_load_balancer_hostname: pulumi.Output[str] | None
    """The address the Ingress controller gave the Ingress (the ALB's DNS name on AWS)."""
    api_gateway: ApiGateway | None
    """With `edge: gateway`: the Gateway, whose ALB the DNS record finds by its tags."""

    def __init__(self, name: str, args: AgentServiceArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        # The type token is the released one: it is part of every child's URN.
        super().__init__("agent-platform:agent_service:AgentService", name, None, opts)
        self._instance = args.instance
        s = args.settings
        ns_labels = {**PSA_RESTRICTED, DATA_ACCESS_LABEL: "true", **PLATFORM_LABELS}
        if s.ingress.enabled and s.ingress.alb:
            # The ALB's target health gates each rollout step, so pods leave the target group
            # before they stop and a rollout never outruns the load balancer.
            ns_labels["elbv2.k8s.aws/pod-readiness-gate-inject"] = "enabled"
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=s.namespace, labels=ns_labels),
            opts=pulumi.ResourceOptions(parent=self))
        self.namespace = namespace.metadata.name
        ctx = ServiceContext(name=name, args=args, component=self, namespace=self.namespace)
        progressive = args.delivery is not None and args.delivery.progressive

        ServiceNetworkPolicies(f"{name}-network", ServiceNetworkPoliciesArgs(
            namespace=ctx.namespace, api_selector=ctx.selector("api"),
            worker_selector=ctx.selector("worker"), api_port=API_PORT,
            worker_metrics_port=WORKER_METRICS_PORT, ingress_peers=args.ingress_peers,
            data_peers=args.data_peers, monitoring_namespace=args.monitoring_namespace,
            llm_cidrs=s.llm.egress_cidrs, labels=ctx.labels("network"),
            tracing=args.tracing_endpoint is not None,
            kube_api_clients=ctx.selector(GATE) if progressive else None,
            pod_identity=s.service_account_role_arn is not None,
            # Blue-green: the controller itself asks the preview for /ready.
            analysis_namespace=args.rollouts_namespace
            if progressive and ctx.delivery.strategy == "bluegreen" else None),
            opts=ctx.child())
        account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            # Its AWS role, if any, comes from an EKS Pod Identity association
            # (components/aws/cluster_addons.py), not an IRSA annotation.
            metadata=ctx.metadata("service-account", name=NAME),
            # No pod of the service talks to the Kubernetes API.
            automount_service_account_token=False,
            opts=ctx.child())

        env = environment(ctx)
        pods = Pods(ctx, account.metadata.name, env.env_from)
        migration = migration_job(pods)
        api = api_deployment(pods, migration)
        worker = worker_deployment(pods, migration)
        self.api_service_name = api_service(ctx)
        api_target, worker_target = deployment_target(api), deployment_target(worker)
        backend = (self.api_service_name, "http")
        after: list[pulumi.Resource] | None = None
        if progressive:
            rollouts = progressive_rollouts(ctx, api, worker)
            api_target, worker_target = rollouts.api, rollouts.worker
            gate = release_gate(ctx, [api, worker], rollouts.resources)
            if rollouts.ingress_backend != backend:
                # The Ingress names the Rollout's Services or action once the first release
                # made them, not before.
                backend, after = rollouts.ingress_backend, [gate]
        self.api_load_balancer_hostname: pulumi.Output[str] | None = None
        self.api_gateway: ApiGateway | None = None
        if s.ingress.enabled and s.ingress.edge == "gateway":
            self.api_gateway = api_gateway(ctx, backend[0])
        elif s.ingress.enabled:
            self.api_load_balancer_hostname = api_ingress(ctx, *backend, after=after)
        autoscale(ctx, api_target, worker_target, env.secret_name)
        self.port_forward = (f"kubectl -n {s.namespace} port-forward "
                             f"svc/{self.api_service_name} 8000:80")
        self.api_url = api_url(ctx)
        self.register_outputs({"namespace": self.namespace})

    def selector(self, component: str) -> dict[str, str]:
        return service_selector(self._instance, component)
