"""Karpenter (`nodeAutoscaler: karpenter`): nodes made to fit the pending pods, per node pool.

What it creates: the role Karpenter's nodes run with and its EKS access entry; the interruption
queue, fed by EventBridge with spot interruptions, rebalance recommendations, instance state
changes and AWS Health events, so nodes are drained before EC2 takes them; the controller's role
(the policy of Karpenter's own getting-started template, scoped to this cluster) through Pod
Identity; the CRDs (their own chart, so CRD upgrades are Helm upgrades too) and the controller,
pinned, on the managed node group so it never runs on nodes it may remove; one EC2NodeClass
(AL2023, IMDSv2 with hop limit 1, encrypted gp3 roots, the private subnets and the cluster
security group by id); and two NodePools:
  - `api`: on-demand only, the API's pods (and the migration Job);
  - `workers`: spot allowed with on-demand as fallback (`workerNodePoolSpot`). A running
    research run's pod carries `karpenter.sh/do-not-disrupt`, so consolidation and expiry wait
    for it; the termination grace period bounds that wait.
Both have CPU limits from the config and disruption budgets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws.cluster import node_role as cluster_node_role
from components.aws.cluster_addons import SYSTEM_NAMESPACE, controller_release
from components.aws.service_account_roles import associate, pod_identity_role
from components.config.nodes import NodeAutoscalingSettings
from components.labels import AWS_ROLE_ANNOTATION, NODE_POOL_LABEL, PLATFORM_LABELS

# Karpenter's chart and its CRDs' chart are released together, with the controller's version.
KARPENTER_VERSION = "1.15.2"
KARPENTER_REGISTRY = "oci://public.ecr.aws/karpenter"
SERVICE_ACCOUNT = "karpenter"
INTERRUPTION_EVENTS = {
    "health": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    "spot-interruption": {"source": ["aws.ec2"],
                          "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"],
                  "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "instance-state": {"source": ["aws.ec2"],
                       "detail-type": ["EC2 Instance State-change Notification"]},
}
# A worker node waits this long for its running research runs before it is taken anyway.
WORKER_DRAIN_GRACE = "3h"


def controller_policy(cluster: str, region: str, account: str, queue_arn: str,
                      node_role_arn: str) -> dict[str, Any]:
    """Karpenter's controller policy (its getting-started CloudFormation template), for one
    cluster: instances, fleets and launch templates only with this cluster's tags."""
    arn = f"arn:aws:ec2:{region}"
    owned = {f"aws:RequestTag/kubernetes.io/cluster/{cluster}": "owned"}
    has_owned = {f"aws:ResourceTag/kubernetes.io/cluster/{cluster}": "owned"}
    created = [f"{arn}:*:{kind}/*" for kind in ("fleet", "instance", "volume",
                                                 "network-interface", "launch-template")]
    profile_owned = {**has_owned, "aws:ResourceTag/topology.kubernetes.io/region": region}
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "AllowScopedEC2InstanceActions", "Effect": "Allow",
         "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
         "Resource": [f"{arn}::image/*", f"{arn}::snapshot/*",
                      f"{arn}:*:spot-instances-request/*", f"{arn}:*:security-group/*",
                      f"{arn}:*:subnet/*", f"{arn}:*:launch-template/*"]},
        {"Sid": "AllowScopedEC2InstanceActionsWithTags", "Effect": "Allow", "Resource": created,
         "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
         "Condition": {"StringEquals": owned,
                       "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}},
        {"Sid": "AllowScopedResourceCreationTagging", "Effect": "Allow", "Resource": created,
         "Action": "ec2:CreateTags",
         "Condition": {"StringEquals": {**owned, "ec2:CreateAction": [
             "RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
             "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}},
        {"Sid": "AllowScopedResourceTagging", "Effect": "Allow",
         "Resource": f"{arn}:*:instance/*", "Action": "ec2:CreateTags",
         "Condition": {"StringEquals": has_owned,
                       "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                       "ForAllValues:StringEquals": {
                           "aws:TagKeys": ["karpenter.sh/nodeclaim", "Name"]}}},
        {"Sid": "AllowScopedDeletion", "Effect": "Allow",
         "Resource": [f"{arn}:*:instance/*", f"{arn}:*:launch-template/*"],
         "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
         "Condition": {"StringEquals": has_owned,
                       "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}},
        {"Sid": "AllowRegionalReadActions", "Effect": "Allow", "Resource": "*",
         "Action": ["ec2:DescribeAvailabilityZones", "ec2:DescribeImages",
                    "ec2:DescribeInstances", "ec2:DescribeInstanceTypeOfferings",
                    "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplates",
                    "ec2:DescribeSecurityGroups", "ec2:DescribeSpotPriceHistory",
                    "ec2:DescribeSubnets"],
         "Condition": {"StringEquals": {"aws:RequestedRegion": region}}},
        {"Sid": "AllowSSMReadActions", "Effect": "Allow", "Action": "ssm:GetParameter",
         "Resource": f"arn:aws:ssm:{region}::parameter/aws/service/*"},
        {"Sid": "AllowPricingReadActions", "Effect": "Allow", "Resource": "*",
         "Action": "pricing:GetProducts"},
        {"Sid": "AllowInterruptionQueueActions", "Effect": "Allow", "Resource": queue_arn,
         "Action": ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
                    "sqs:ReceiveMessage"]},
        {"Sid": "AllowPassingInstanceRole", "Effect": "Allow", "Resource": node_role_arn,
         "Action": "iam:PassRole",
         "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}},
        {"Sid": "AllowScopedInstanceProfileCreationActions", "Effect": "Allow",
         "Resource": "*", "Action": ["iam:CreateInstanceProfile"],
         "Condition": {"StringEquals": {
             **owned, "aws:RequestTag/topology.kubernetes.io/region": region},
             "StringLike": {"aws:RequestTag/karpenter.sh/nodeclass": "*"}}},
        {"Sid": "AllowScopedInstanceProfileTagActions", "Effect": "Allow", "Resource": "*",
         "Action": ["iam:TagInstanceProfile"],
         "Condition": {"StringEquals": {
             **profile_owned, **owned, "aws:RequestTag/topology.kubernetes.io/region": region},
             "StringLike": {"aws:ResourceTag/karpenter.sh/nodeclass": "*",
                            "aws:RequestTag/karpenter.sh/nodeclass": "*"}}},
        {"Sid": "AllowScopedInstanceProfileActions", "Effect": "Allow", "Resource": "*",
         "Action": ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile",
                    "iam:DeleteInstanceProfile"],
         "Condition": {"StringEquals": profile_owned,
                       "StringLike": {"aws:ResourceTag/karpenter.sh/nodeclass": "*"}}},
        {"Sid": "AllowInstanceProfileReadActions", "Effect": "Allow", "Resource": "*",
         "Action": "iam:GetInstanceProfile"},
        {"Sid": "AllowAPIServerEndpointDiscovery", "Effect": "Allow",
         "Resource": f"arn:aws:eks:{region}:{account}:cluster/{cluster}",
         "Action": "eks:DescribeCluster"},
    ]}


@dataclass(frozen=True, kw_only=True)
class KarpenterArgs:
    cluster_name: str
    cluster: pulumi.Input[str]
    """The cluster's name as its output, so that nothing here starts before the cluster."""
    region: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    """The private subnets nodes are launched in."""
    security_group_id: pulumi.Input[str]
    """The cluster security group (what RDS and Valkey admit)."""
    settings: NodeAutoscalingSettings
    arm64: bool
    disk_size_gb: int
    tags: Mapping[str, str]


class Karpenter(pulumi.ComponentResource):
    """Karpenter's AWS side, its controller, its node class and the service's node pools."""

    def __init__(self, name: str, args: KarpenterArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:karpenter:Karpenter", name, None, opts)
        self._name = name
        self._args = args
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        node_role, _ = cluster_node_role(name, tags, child)
        access = aws.eks.AccessEntry(f"{name}-node-access", cluster_name=args.cluster,
                                     principal_arn=node_role.arn, type="EC2_LINUX", tags=tags,
                                     opts=child)
        queue = self._interruption_queue(tags)
        account = aws.get_caller_identity_output().account_id
        controller_role = pod_identity_role(
            f"{name}-controller-pod-identity", tags=tags, opts=child,
            inline_policy=pulumi.Output.all(args.region, account, queue.arn,
                                            node_role.arn).apply(
                lambda v: json.dumps(controller_policy(args.cluster_name, *v))))
        association = associate(f"{name}-controller-pod-identity", cluster_name=args.cluster,
                                namespace=SYSTEM_NAMESPACE, service_account=SERVICE_ACCOUNT,
                                role_arn=controller_role.arn, tags=tags,
                                opts=pulumi.ResourceOptions(parent=controller_role))
        crds = self._release("karpenter-crd", {}, depends_on=[])
        controller = self._release("karpenter", {
            "settings": {"clusterName": args.cluster_name, "interruptionQueue": queue.name},
            "serviceAccount": {"name": SERVICE_ACCOUNT},
            "podAnnotations": {AWS_ROLE_ANNOTATION: controller_role.arn},
            "replicas": 2,
            "controller": {"resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                                         "limits": {"cpu": "1", "memory": "1Gi"}}},
            # On the managed node group only: never on a node it may take away.
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "eks.amazonaws.com/nodegroup", "operator": "Exists"}]}]}}},
        }, depends_on=[crds, association, access], skip_crds=True)
        self._node_pools(node_role, controller)
        self.register_outputs({"interruption_queue": queue.name})

    def _interruption_queue(self, tags: dict[str, str]) -> aws.sqs.Queue:
        name = self._name
        child = pulumi.ResourceOptions(parent=self)
        queue = aws.sqs.Queue(f"{name}-interruptions", message_retention_seconds=300,
                              sqs_managed_sse_enabled=True, tags=tags, opts=child)
        aws.sqs.QueuePolicy(f"{name}-interruptions-policy", queue_url=queue.url,
                            policy=queue.arn.apply(lambda arn: json.dumps({
                                "Version": "2012-10-17", "Statement": [{
                                    "Effect": "Allow", "Action": "sqs:SendMessage",
                                    "Principal": {"Service": ["events.amazonaws.com",
                                                              "sqs.amazonaws.com"]},
                                    "Resource": arn}]})), opts=child)
        for event, pattern in INTERRUPTION_EVENTS.items():
            rule = aws.cloudwatch.EventRule(f"{name}-{event}", event_pattern=json.dumps(pattern),
                                            description=f"Karpenter: {event} events", tags=tags,
                                            opts=child)
            aws.cloudwatch.EventTarget(f"{name}-{event}", rule=rule.name, arn=queue.arn,
                                       opts=pulumi.ResourceOptions(parent=rule))
        return queue

    def _release(self, chart: str, values: Mapping[str, Any],
                 depends_on: Sequence[pulumi.Resource],
                 skip_crds: bool = False) -> k8s.helm.v3.Release:
        return controller_release(f"{self._name}-{chart}", chart, KARPENTER_VERSION,
                                  KARPENTER_REGISTRY, values=values, skip_crds=skip_crds,
                                  opts=pulumi.ResourceOptions(parent=self,
                                                              depends_on=list(depends_on)))

    def _node_pools(self, node_role: aws.iam.Role, controller: pulumi.Resource) -> None:
        args = self._args
        s = args.settings
        after = pulumi.ResourceOptions(parent=self, depends_on=[controller])
        metadata = {"labels": PLATFORM_LABELS}
        node_class = k8s.apiextensions.CustomResource(
            f"{self._name}-node-class", api_version="karpenter.k8s.aws/v1",
            kind="EC2NodeClass", metadata={**metadata, "name": "agent-platform"},
            spec={
                "role": node_role.name,
                "amiSelectorTerms": [{"alias": "al2023@latest"}],
                "subnetSelectorTerms": pulumi.Output.from_input(args.subnet_ids).apply(
                    lambda ids: [{"id": subnet} for subnet in ids]),
                "securityGroupSelectorTerms": [{"id": args.security_group_id}],
                # Hop limit 1: pods cannot borrow the node role's credentials.
                "metadataOptions": {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled",
                                    "httpPutResponseHopLimit": 1, "httpTokens": "required"},
                "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {
                    "volumeSize": f"{args.disk_size_gb}Gi", "volumeType": "gp3",
                    "encrypted": True, "deleteOnTermination": True}}],
                "tags": dict(args.tags),
            }, opts=after)
        arch = "arm64" if args.arm64 else "amd64"
        for pool, capacity, limit, budget, grace in (
                ("api", ["on-demand"], s.api_cpu_limit, "20%", "15m"),
                ("workers", ["spot", "on-demand"] if s.worker_spot else ["on-demand"],
                 s.worker_cpu_limit, "1", WORKER_DRAIN_GRACE)):
            k8s.apiextensions.CustomResource(
                f"{self._name}-{pool}-pool", api_version="karpenter.sh/v1", kind="NodePool",
                metadata={**metadata, "name": pool},
                spec={
                    "template": {
                        "metadata": {"labels": {NODE_POOL_LABEL: pool}},
                        "spec": {
                            "nodeClassRef": {"group": "karpenter.k8s.aws",
                                             "kind": "EC2NodeClass", "name": "agent-platform"},
                            "requirements": [
                                {"key": "karpenter.sh/capacity-type", "operator": "In",
                                 "values": capacity},
                                {"key": "kubernetes.io/arch", "operator": "In",
                                 "values": [arch]},
                                {"key": "karpenter.k8s.aws/instance-category",
                                 "operator": "In", "values": ["c", "m", "r"]},
                                {"key": "karpenter.k8s.aws/instance-generation",
                                 "operator": "Gt", "values": ["5"]}],
                            # Replaced monthly onto the newest AMI, within the budgets below.
                            "expireAfter": "720h",
                            "terminationGracePeriod": grace}},
                    "limits": {"cpu": str(limit)},
                    "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized",
                                   "consolidateAfter": "5m", "budgets": [{"nodes": budget}]},
                }, opts=pulumi.ResourceOptions(parent=self, depends_on=[node_class]))
