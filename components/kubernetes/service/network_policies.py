"""NetworkPolicies of the agent service's namespace: deny everything, then admit each flow.

Flows: the ingress controller (or the ALB, from the VPC) and Prometheus to the API; Prometheus to
the workers' metrics; every pod to DNS and to Postgres/Redis; workers to LLM APIs on TCP 443; the
release gate (canary releases) to the Kubernetes API; with an AWS role, every pod to the node's
Pod Identity agent.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.endpoints import POSTGRES_PORT, REDIS_PORT
from components.kubernetes.peers import (
    dns_egress,
    kube_api_egress,
    namespace_peer,
    pod_identity_agent_egress,
    ports,
)

# `0.0.0.0/0` for LLM egress means the internet: in-cluster and VPC addresses stay closed, so a
# compromised worker cannot use the LLM allowance to reach internal services.
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                  "100.64.0.0/10")
HTTPS_PORT = 443
OTLP_HTTP_PORT = 4318

NetworkPolicyPeer = k8s.networking.v1.NetworkPolicyPeerArgs


@dataclass(kw_only=True)
class ServiceNetworkPoliciesArgs:
    namespace: pulumi.Input[str]
    """Namespace the policies apply to."""
    api_selector: Mapping[str, str]
    """Labels of the API pods."""
    worker_selector: Mapping[str, str]
    """Labels of the worker pods."""
    api_port: int
    """Container port of the API."""
    worker_metrics_port: int
    """Container port of a worker's /metrics."""
    ingress_peers: Sequence[NetworkPolicyPeer]
    """Where API traffic comes from."""
    data_peers: Sequence[NetworkPolicyPeer]
    """Where Postgres and Redis are."""
    monitoring_namespace: str
    """Namespace whose pods may scrape metrics."""
    llm_cidrs: Sequence[str]
    """Destinations workers may reach on TCP 443."""
    labels: Mapping[str, str]
    """Labels of the policies themselves."""
    tracing: bool = False
    """Whether pods send traces to the collector in the monitoring namespace."""
    kube_api_clients: Mapping[str, str] | None = None
    """Labels of the only pods that talk to the Kubernetes API (the release gate), if any."""
    pod_identity: bool = False
    """The pods have an AWS role (`serviceAccountRoleArn`): they reach the Pod Identity agent."""
    analysis_namespace: str | None = None
    """A namespace whose pods may call the API (Argo Rollouts probing a blue-green preview)."""


def cidr_peers(cidrs: Sequence[str]) -> list[NetworkPolicyPeer]:
    peers = []
    for cidr in cidrs:
        network = ipaddress.IPv4Network(cidr)
        excluded = list(PRIVATE_RANGES) if network.prefixlen == 0 else None
        peers.append(NetworkPolicyPeer(ip_block=k8s.networking.v1.IPBlockArgs(
            cidr=cidr, except_=excluded)))
    return peers


class ServiceNetworkPolicies(pulumi.ComponentResource):
    """Default deny in both directions plus one policy per allowed flow."""

    def __init__(self, name: str, args: ServiceNetworkPoliciesArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:service_network:ServiceNetworkPolicies", name, None,
                         opts)
        self._name = name
        self._args = args
        every_pod: Mapping[str, str] = {}
        monitoring = namespace_peer(args.monitoring_namespace)

        self._policy("default-deny", every_pod)
        self._policy("dns-egress", every_pod, egress=[dns_egress()])
        self._policy("datastore-egress", every_pod,
                     egress=[k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                         to=list(args.data_peers), ports=ports(POSTGRES_PORT, REDIS_PORT))])
        self._policy("llm-egress", args.worker_selector,
                     egress=[k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                         to=cidr_peers(args.llm_cidrs), ports=ports(HTTPS_PORT))])
        if args.tracing:
            self._policy("tracing-egress", every_pod,
                         egress=[k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                             to=[monitoring], ports=ports(OTLP_HTTP_PORT))])
        if args.pod_identity:
            self._policy("pod-identity-egress", every_pod, egress=[pod_identity_agent_egress()])
        if args.kube_api_clients:
            # Any address: where the API server answers differs per cluster. Only the gate's
            # pods, whose token may only read Rollouts and their pods, get this.
            self._policy("kube-api-egress", args.kube_api_clients,
                         egress=[kube_api_egress()])
        self._policy("api-ingress", args.api_selector,
                     ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                         from_=[*args.ingress_peers, monitoring,
                                *([namespace_peer(args.analysis_namespace)]
                                  if args.analysis_namespace else [])],
                         ports=ports(args.api_port))])
        self._policy("worker-metrics-ingress", args.worker_selector,
                     ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                         from_=[monitoring], ports=ports(args.worker_metrics_port))])
        self.register_outputs({})

    def _policy(self, policy: str, pods: Mapping[str, str], *,
                ingress: list[k8s.networking.v1.NetworkPolicyIngressRuleArgs] | None = None,
                egress: list[k8s.networking.v1.NetworkPolicyEgressRuleArgs] | None = None,
                ) -> None:
        if ingress is None and egress is None:
            types = ["Ingress", "Egress"]
        else:
            types = (["Ingress"] if ingress is not None else []) + \
                    (["Egress"] if egress is not None else [])
        k8s.networking.v1.NetworkPolicy(
            f"{self._name}-{policy}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=policy, namespace=self._args.namespace,
                                                labels=dict(self._args.labels)),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(pods) or None),
                policy_types=types, ingress=ingress, egress=egress),
            opts=pulumi.ResourceOptions(parent=self))
