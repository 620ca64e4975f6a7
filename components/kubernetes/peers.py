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
        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=80)])
