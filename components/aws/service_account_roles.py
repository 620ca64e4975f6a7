"""IAM roles for Kubernetes service accounts: EKS Pod Identity, and IRSA where it is still needed.

Pod Identity is the default: the role trusts the EKS Pod Identity service, not a cluster's OIDC
issuer, so it needs no OIDC provider and no per-cluster trust policy, and the binding to a
service account is an `aws.eks.PodIdentityAssociation` that `pulumi preview` shows like any
other resource. IRSA stays only for the VPC CNI and the EBS CSI driver, whose pods EKS runs
(components/aws/cluster.py says why).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"


def service_trust_policy(service: str) -> str:
    """Only the AWS service `service` (e.g. `ec2.amazonaws.com`) may assume the role."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": service},
        "Action": ["sts:AssumeRole", "sts:TagSession"]}]})


def pod_identity_trust_policy() -> str:
    """Only the EKS Pod Identity service may assume the role, tagging the session with the
    cluster, namespace and service account it serves; which service account gets it is decided
    by the association."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
        "Action": ["sts:AssumeRole", "sts:TagSession"]}]})


def irsa_trust_policy(oidc_provider_arn: str, issuer_url: str, namespace: str,
                      service_account: str) -> str:
    """A trust policy that lets exactly `namespace/service_account` assume the role."""
    issuer = issuer_url.removeprefix("https://")
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": oidc_provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                f"{issuer}:aud": "sts.amazonaws.com",
            }},
        }],
    })


def service_account_role(
    name: str,
    *,
    trust_policy: pulumi.Input[str],
    managed_policy_arns: Sequence[str] = (),
    inline_policy: Mapping[str, Any] | pulumi.Output[str] | None = None,
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> aws.iam.Role:
    """The role (and its policy attachments) for one Kubernetes service account."""
    role = aws.iam.Role(name, assume_role_policy=trust_policy, tags=dict(tags), opts=opts)
    role_opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=role))
    for index, arn in enumerate(managed_policy_arns):
        # Named by the policy, never by its position in the list, so removing one policy does
        # not replace the attachments after it; the alias carries state from the old names.
        aws.iam.RolePolicyAttachment(
            f"{name}-{arn.rsplit('/', 1)[-1]}", role=role.name, policy_arn=arn,
            opts=pulumi.ResourceOptions.merge(role_opts, pulumi.ResourceOptions(
                aliases=[pulumi.Alias(name=f"{name}-{index}")])))
    if inline_policy is not None:
        # A policy naming other resources comes as an Output of its JSON.
        policy = inline_policy if isinstance(inline_policy, pulumi.Output) \
            else json.dumps(inline_policy)
        aws.iam.RolePolicy(f"{name}-inline", role=role.id, policy=policy, opts=role_opts)
    return role


def pod_identity_role(name: str, *, managed_policy_arns: Sequence[str] = (),
                      inline_policy: Mapping[str, Any] | pulumi.Output[str] | None = None,
                      tags: Mapping[str, str], opts: pulumi.ResourceOptions) -> aws.iam.Role:
    return service_account_role(name, trust_policy=pod_identity_trust_policy(),
                                managed_policy_arns=managed_policy_arns,
                                inline_policy=inline_policy, tags=tags, opts=opts)


def irsa_role(name: str, *, oidc_provider_arn: pulumi.Input[str],
              issuer_url: pulumi.Input[str], namespace: str, service_account: str,
              managed_policy_arns: Sequence[str] = (),
              inline_policy: Mapping[str, Any] | None = None, tags: Mapping[str, str],
              opts: pulumi.ResourceOptions) -> aws.iam.Role:
    trust = pulumi.Output.all(oidc_provider_arn, issuer_url).apply(
        lambda a: irsa_trust_policy(a[0], a[1], namespace, service_account))
    return service_account_role(name, trust_policy=trust,
                                managed_policy_arns=managed_policy_arns,
                                inline_policy=inline_policy, tags=tags, opts=opts)


def associate(name: str, *, cluster_name: pulumi.Input[str], namespace: pulumi.Input[str],
              service_account: str, role_arn: pulumi.Input[str], tags: Mapping[str, str],
              opts: pulumi.ResourceOptions) -> aws.eks.PodIdentityAssociation:
    """Binds `namespace/service_account` to the role: pods created after it get the role's
    credentials from the Pod Identity agent on their node."""
    return aws.eks.PodIdentityAssociation(
        name, cluster_name=cluster_name, namespace=namespace, service_account=service_account,
        role_arn=role_arn, tags=dict(tags), opts=opts)
