"""NetworkPolicy peers the platform's namespaces admit each other by."""

from __future__ import annotations

import pulumi_kubernetes as k8s


def namespace_peer(namespace: str) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    """Every pod of one namespace (the label Kubernetes sets on every namespace)."""
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(
            match_labels={"kubernetes.io/metadata.name": namespace}))


# The EKS Pod Identity agent on every node (link-local, hostNetwork): where a pod's AWS SDK gets
# the credentials of its service account's role.
POD_IDENTITY_AGENT = "169.254.170.23/32"


def pod_identity_agent_egress() -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    """Egress to the node's Pod Identity agent (TCP 80). The VPC CNI enforces NetworkPolicies,
    so a pod under default-deny without it never gets its role's credentials."""
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        to=[k8s.networking.v1.NetworkPolicyPeerArgs(
            ip_block=k8s.networking.v1.IPBlockArgs(cidr=POD_IDENTITY_AGENT))],
        ports=ports(80))


DNS_PORT = 53
# The Kubernetes API: 443 on EKS (the endpoint's ENIs in the VPC), 6443 on kind, k3d, minikube.
KUBE_API_PORTS = (443, 6443)


def ports(*numbers: int, protocol: str = "TCP") -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
    return [k8s.networking.v1.NetworkPolicyPortArgs(protocol=protocol, port=p) for p in numbers]


def dns_egress() -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    """Egress to the cluster's DNS (kube-dns in kube-system), UDP and TCP 53."""
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        to=[k8s.networking.v1.NetworkPolicyPeerArgs(
            namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                match_labels={"kubernetes.io/metadata.name": "kube-system"}),
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"k8s-app": "kube-dns"}))],
        ports=ports(DNS_PORT, protocol="UDP") + ports(DNS_PORT))


def kube_api_egress() -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    """Egress to the Kubernetes API, wherever the cluster serves it (any address)."""
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(ports=ports(*KUBE_API_PORTS))
