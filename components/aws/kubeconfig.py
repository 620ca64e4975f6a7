"""Kubeconfig for an EKS cluster that authenticates with `aws eks get-token`."""

from __future__ import annotations

import json

import pulumi


def eks_kubeconfig(cluster_name: str, endpoint: str, ca_data: str, region: str,
                   role_arn: str | None = None) -> str:
    """A kubeconfig (JSON is valid YAML) that fetches short-lived tokens through the AWS CLI.

    It holds no credential itself; whoever uses it needs AWS credentials that the cluster's
    access entries admit.
    """
    token_args = ["eks", "get-token", "--cluster-name", cluster_name, "--region", region,
                  "--output", "json"]
    if role_arn:
        token_args += ["--role-arn", role_arn]
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {
            "server": endpoint, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name,
                                                        "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [{"name": cluster_name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": token_args,
            "interactiveMode": "Never",
        }}}],
    }, indent=2)


def eks_kubeconfig_output(cluster_name: pulumi.Input[str], endpoint: pulumi.Input[str],
                          ca_data: pulumi.Input[str], region: pulumi.Input[str],
                          role_arn: str | None) -> pulumi.Output[str]:
    """The kubeconfig as a secret Output.

    It depends only on the cluster's name, endpoint and CA, so unrelated cluster changes (logging,
    tags, version) do not change it and do not replace the Kubernetes provider built from it.
    """
    return pulumi.Output.secret(pulumi.Output.all(cluster_name, endpoint, ca_data, region).apply(
        lambda a: eks_kubeconfig(a[0], a[1], a[2], a[3], role_arn)))
