"""The AWS Load Balancer Controller: its chart pin, AWS permissions, CRDs and the ALB
GatewayClass.

The controller's CRDs (its own and the Gateway API's standard channel) are applied by the
program, not by the chart: Helm installs a chart's `crds/` on the first install only and never
upgrades them, and the controller's upgrade notes require current CRDs. They are vendored as
each release ships them (`make vendor-edge-crds`), applied before the chart so the controller
finds the Gateway API when it starts (it enables its ALB Gateway support only if the CRDs exist
at start-up), and retained if removed from the program: deleting a CRD deletes every object of
its kind, and with a Gateway or TargetGroupBinding the load balancer behind it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.manifests import GATEWAY_API, vendored_files

ALB_CONTROLLER_CHART = ("aws-load-balancer-controller", "3.2.2",
                        "https://aws.github.io/eks-charts")
# The controller's Go module has no /v3 path, so the module proxy serves its v3 commits as
# pseudo-versions only: this one is the chart 3.2.2 commit (`make vendor-edge-crds` reads it).
ALB_CONTROLLER_MODULE = "v0.0.0-20260423195125-93ff3b5fdaad"
# The Gateway API release the controller is built for (its docs: v1.5), newest patch.
GATEWAY_API_VERSION = "v1.5.1"
ALB_GATEWAY_CONTROLLER = "gateway.k8s.aws/alb"
"""The `controllerName` of GatewayClasses the controller provisions ALBs for."""
# The tags the controller puts on what it makes: its cluster, and for a Gateway's ALB the
# Gateway's `namespace/name` (its tracking provider, pkg/deploy/tracking/provider.go).
CLUSTER_TAG = "elbv2.k8s.aws/cluster"
ALB_GATEWAY_TAG = "gateway.k8s.aws.alb/stack"

CRD_ROOT = Path(__file__).parent / "crds"
CRD_DIRECTORIES = (CRD_ROOT / f"aws-load-balancer-controller-{ALB_CONTROLLER_CHART[1]}",
                   CRD_ROOT / f"gateway-api-{GATEWAY_API_VERSION}")
_ELB_CLUSTER_TAGS = (CLUSTER_TAG, "ingress.k8s.aws/cluster", "service.k8s.aws/cluster")


def alb_controller_policy() -> dict[str, Any]:
    """What the AWS Load Balancer Controller may do: read the VPC freely, but change only load
    balancers, target groups and security groups that carry its own cluster tag.

    The release's own policy (docs/install/iam_policy.json) less WAF Classic (`waf-regional:*`,
    retired by AWS), with `elasticloadbalancing:Describe*` for its list of describes; a test
    compares the two."""
    tagged = {"Null": {f"aws:ResourceTag/{CLUSTER_TAG}": "false"}}
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "Discover", "Effect": "Allow", "Resource": "*", "Action": [
            "ec2:DescribeAccountAttributes", "ec2:DescribeAddresses",
            "ec2:DescribeAvailabilityZones", "ec2:DescribeInternetGateways",
            "ec2:DescribeVpcs", "ec2:DescribeVpcPeeringConnections", "ec2:DescribeSubnets",
            "ec2:DescribeSecurityGroups", "ec2:DescribeInstances",
            "ec2:DescribeNetworkInterfaces", "ec2:DescribeTags", "ec2:DescribeRouteTables",
            "ec2:GetCoipPoolUsage", "ec2:DescribeCoipPools", "ec2:DescribeIpamPools",
            "ec2:GetSecurityGroupsForVpc",
            "elasticloadbalancing:Describe*", "acm:ListCertificates", "acm:DescribeCertificate",
            "iam:ListServerCertificates", "iam:GetServerCertificate",
            "cognito-idp:DescribeUserPoolClient", "wafv2:GetWebACL",
            "wafv2:GetWebACLForResource", "shield:GetSubscriptionState",
            "shield:DescribeProtection"]},
        {"Sid": "ServiceLinkedRole", "Effect": "Allow", "Resource": "*",
         "Action": "iam:CreateServiceLinkedRole",
         "Condition": {"StringEquals": {
             "iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}}},
        {"Sid": "AttachProtections", "Effect": "Allow", "Resource": "*", "Action": [
            "wafv2:AssociateWebACL", "wafv2:DisassociateWebACL", "shield:CreateProtection",
            "shield:DeleteProtection", "elasticloadbalancing:SetWebAcl"]},
        {"Sid": "CreateOwnedSecurityGroups", "Effect": "Allow", "Resource": "*",
         "Action": ["ec2:CreateSecurityGroup", "ec2:AuthorizeSecurityGroupIngress",
                    "ec2:RevokeSecurityGroupIngress"]},
        {"Sid": "TagNewSecurityGroups", "Effect": "Allow",
         "Resource": "arn:aws:ec2:*:*:security-group/*", "Action": "ec2:CreateTags",
         "Condition": {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}}},
        {"Sid": "ChangeOwnedSecurityGroups", "Effect": "Allow", "Resource": "*",
         "Action": ["ec2:CreateTags", "ec2:DeleteTags", "ec2:DeleteSecurityGroup"],
         "Condition": tagged},
        {"Sid": "CreateLoadBalancers", "Effect": "Allow", "Resource": "*",
         "Action": ["elasticloadbalancing:CreateLoadBalancer",
                    "elasticloadbalancing:CreateTargetGroup"],
         "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": list(_ELB_CLUSTER_TAGS)}}},
        {"Sid": "ManageListeners", "Effect": "Allow", "Resource": "*", "Action": [
            "elasticloadbalancing:CreateListener", "elasticloadbalancing:DeleteListener",
            "elasticloadbalancing:ModifyListener", "elasticloadbalancing:ModifyListenerAttributes",
            "elasticloadbalancing:AddListenerCertificates",
            "elasticloadbalancing:RemoveListenerCertificates",
            "elasticloadbalancing:CreateRule", "elasticloadbalancing:DeleteRule",
            "elasticloadbalancing:ModifyRule", "elasticloadbalancing:SetRulePriorities"]},
        {"Sid": "TagLoadBalancers", "Effect": "Allow", "Action": [
            "elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
         "Resource": ["arn:aws:elasticloadbalancing:*:*:loadbalancer/*",
                      "arn:aws:elasticloadbalancing:*:*:targetgroup/*",
                      "arn:aws:elasticloadbalancing:*:*:listener/*",
                      "arn:aws:elasticloadbalancing:*:*:listener-rule/*"]},
        {"Sid": "ChangeOwnedLoadBalancers", "Effect": "Allow", "Resource": "*",
         "Condition": tagged, "Action": [
             "elasticloadbalancing:ModifyLoadBalancerAttributes",
             "elasticloadbalancing:SetIpAddressType", "elasticloadbalancing:SetSecurityGroups",
             "elasticloadbalancing:SetSubnets", "elasticloadbalancing:DeleteLoadBalancer",
             "elasticloadbalancing:ModifyTargetGroup",
             "elasticloadbalancing:ModifyTargetGroupAttributes",
             "elasticloadbalancing:DeleteTargetGroup",
             "elasticloadbalancing:ModifyCapacityReservation",
             "elasticloadbalancing:ModifyIpPools"]},
        {"Sid": "RegisterPodTargets", "Effect": "Allow",
         "Resource": "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*",
         "Action": ["elasticloadbalancing:RegisterTargets",
                    "elasticloadbalancing:DeregisterTargets"]},
    ]}


def controller_crds(name: str, provider: k8s.Provider | None,
                    opts: pulumi.ResourceOptions) -> k8s.yaml.v2.ConfigGroup:
    """The controller's and the Gateway API's CRDs, applied through `provider`: one that adopts
    objects that already exist (`upsert_existing_objects`, forcing field conflicts), because
    the chart's first install made the controller's CRDs on every running stack."""
    return k8s.yaml.v2.ConfigGroup(
        name, files=vendored_files(CRD_DIRECTORIES),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
            provider=provider, retain_on_delete=True)))


def alb_gateway_class(name: str, class_name: str,
                      opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    """A GatewayClass whose Gateways become ALBs, named `gatewayClassName` (Gateways refer to
    it by that name)."""
    return k8s.apiextensions.CustomResource(
        name, api_version=GATEWAY_API, kind="GatewayClass",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=class_name),
        spec={"controllerName": ALB_GATEWAY_CONTROLLER,
              "description": "Application Load Balancers of the AWS Load Balancer Controller"},
        opts=opts)
