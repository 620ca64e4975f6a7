"""What every part of the agent service's deployment shares: its names, labels and parent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config.delivery import DeliverySettings
from components.config.service import ServiceSettings
from components.endpoints import CacheEndpoint, DatabaseEndpoint
from components.labels import PLATFORM_LABELS

NAME = "agent-service"
API_PORT = 8000
WORKER_METRICS_PORT = 9100
ROLLOUTS_API = "argoproj.io/v1alpha1"
"""Argo Rollouts' API group and version (Rollouts, AnalysisTemplates)."""
QUEUE_NAME = "research"
# SAQ keeps a queue's waiting job ids in this Redis list (saq/queue/redis.py: `saq:<name>:queued`).
QUEUED_LIST = f"saq:{QUEUE_NAME}:queued"


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
    certificate_arn: pulumi.Input[str] | None = None
    """The ALB's certificate when the program made it (`domainName`); otherwise the
    configured `ingressCertificateArn` is used."""
    trace_sample_ratio: float = 0.1
    """Share of traces kept (parent-based)."""
    node_pools: bool = False
    """Karpenter runs the nodes: the API's pods and the workers' each select their node pool."""
    delivery: DeliverySettings | None = None
    """Canary releases through Argo Rollouts (progressive.py); None: rolling Deployments."""
    rollouts_controller: Sequence[pulumi.Resource] = ()
    """The Argo Rollouts CRDs and controller the Rollouts and templates wait for."""
    protect: bool = True
    """Protect the Rollouts: deleting one deletes the pods serving (see progressive.py)."""
    rollouts_namespace: str | None = None
    """Where the Argo Rollouts controller runs (it probes a blue-green preview)."""


@dataclass(frozen=True)
class ServiceContext:
    """The component's children are built from this; every one is parented to `component`."""

    name: str
    """The component's logical name, which prefixes its children's."""
    args: AgentServiceArgs
    component: pulumi.Resource
    namespace: pulumi.Output[str]

    @property
    def settings(self) -> ServiceSettings:
        return self.args.settings

    @property
    def delivery(self) -> DeliverySettings:
        """The canary settings; only asked for when the service is released progressively."""
        if self.args.delivery is None:
            raise ValueError("the service is not released progressively")
        return self.args.delivery

    def child(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self.component, **kwargs)

    def selector(self, component: str) -> dict[str, str]:
        return service_selector(self.args.instance, component)

    def labels(self, component: str) -> dict[str, str]:
        return {**self.selector(component), **PLATFORM_LABELS}

    def metadata(self, component: str, name: str | None = None,
                 **kwargs: Any) -> k8s.meta.v1.ObjectMetaArgs:
        """Metadata in the service's namespace; `name` None lets the provider auto-name it."""
        return k8s.meta.v1.ObjectMetaArgs(name=name, namespace=self.namespace,
                                          labels=self.labels(component), **kwargs)


def service_selector(instance: str, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/instance": instance,
            "app.kubernetes.io/component": component}
