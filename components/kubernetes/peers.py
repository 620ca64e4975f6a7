"""NetworkPolicy peers the platform's namespaces admit each other by."""

from __future__ import annotations

import pulumi_kubernetes as k8s


def namespace_peer(namespace: str) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    """Every pod of one namespace (the label Kubernetes sets on every namespace)."""
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(
            match_labels={"kubernetes.io/metadata.name": namespace}))
