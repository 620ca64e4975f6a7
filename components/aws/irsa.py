"""IAM roles for Kubernetes service accounts (IRSA): one role, trusted by one service account."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws


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


def irsa_role(
    name: str,
    *,
    oidc_provider_arn: pulumi.Input[str],
    issuer_url: pulumi.Input[str],
    namespace: str,
    service_account: str,
    managed_policy_arns: Sequence[str] = (),
    inline_policy: Mapping[str, Any] | None = None,
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> aws.iam.Role:
    """Creates the role (and its policy attachments) for one Kubernetes service account."""
    role = aws.iam.Role(
        name,
        assume_role_policy=pulumi.Output.all(oidc_provider_arn, issuer_url).apply(
            lambda a: irsa_trust_policy(a[0], a[1], namespace, service_account)),
        tags=dict(tags), opts=opts)
    role_opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=role))
    for index, arn in enumerate(managed_policy_arns):
        # Named by the policy, never by its position in the list, so removing one policy does
        # not replace the attachments after it; the alias carries state from the old names.
        aws.iam.RolePolicyAttachment(
            f"{name}-{arn.rsplit('/', 1)[-1]}", role=role.name, policy_arn=arn,
            opts=pulumi.ResourceOptions.merge(role_opts, pulumi.ResourceOptions(
                aliases=[pulumi.Alias(name=f"{name}-{index}")])))
    if inline_policy is not None:
        aws.iam.RolePolicy(f"{name}-inline", role=role.id, policy=json.dumps(inline_policy),
                           opts=role_opts)
    return role
