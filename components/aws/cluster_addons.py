"""Controllers every AWS stack needs: ALB ingress, metrics, node autoscaling, gp3 storage.

Charts are installed with `kubernetes.helm.v3.Release` rather than `helm.v4.Chart`: the load
balancer controller's chart generates its webhook certificate at render time, which a client-side
render would show as a change on every preview, and Helm's own hooks and atomic rollback are
wanted for controllers that sit in the request path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws.load_balancer_controller import (
    ALB_CONTROLLER_CHART,
    alb_controller_policy,
    alb_gateway_class,
    controller_crds,
)
from components.aws.service_account_roles import associate, pod_identity_role
from components.labels import AWS_ROLE_ANNOTATION
from components.versions import CLUSTER_AUTOSCALER_IMAGE_TAGS

# Pinned so that a `pulumi up` months from now installs what was tested today.
METRICS_SERVER_CHART = ("metrics-server", "3.13.0",
                        "https://kubernetes-sigs.github.io/metrics-server/")
CLUSTER_AUTOSCALER_CHART = ("cluster-autoscaler", "9.56.0",
                            "https://kubernetes.github.io/autoscaler")
KEDA_CHART = ("keda", "2.18.0", "https://kedacore.github.io/charts")
KEDA_NAMESPACE = "keda"
ALB_SERVICE_ACCOUNT = "aws-load-balancer-controller"
AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"
SYSTEM_NAMESPACE = "kube-system"


# Argo Rollouts' `--aws-verify-target-group`: it reads the ALB back after each traffic shift
# (the permissions its documentation lists; Describe* take no resource-level scoping).
ROLLOUTS_POLICY: dict[str, Any] = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Resource": "*",
    "Action": [f"elasticloadbalancing:Describe{what}" for what in (
        "TargetGroups", "LoadBalancers", "Listeners", "Rules", "Tags", "TargetHealth")]}]}


def cluster_autoscaler_policy(cluster_name: str) -> dict[str, Any]:
    """Scale only the node groups tagged as owned by this cluster."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "Discover", "Effect": "Allow", "Resource": "*", "Action": [
            "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
            "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeScalingActivities",
            "autoscaling:DescribeTags", "ec2:DescribeImages", "ec2:DescribeInstanceTypes",
            "ec2:DescribeLaunchTemplateVersions", "ec2:GetInstanceTypesFromInstanceRequirements",
            "eks:DescribeNodegroup"]},
        {"Sid": "ScaleOwnedGroups", "Effect": "Allow", "Resource": "*", "Action": [
            "autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
         "Condition": {"StringEquals": {
             f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}}},
    ]}


@dataclass(kw_only=True)
class ClusterAddonsArgs:
    cluster_name: str
    """EKS cluster name (the controllers discover their resources by it)."""
    region: pulumi.Input[str]
    """AWS region; passed explicitly because pods cannot reach instance metadata (hop limit 1)."""
    vpc_id: pulumi.Input[str]
    """VPC of the cluster, for the load balancer controller."""
    cluster: pulumi.Input[str]
    """The same name as the cluster's output, so that Pod Identity associations wait for it."""
    tags: Mapping[str, str]
    """Tags for AWS resources."""
    kubernetes_version: str
    """The cluster's Kubernetes minor: the autoscaler runs the same one."""
    keda: bool = True
    """Install KEDA, which scales the workers on their queue's length."""
    cluster_autoscaler: bool = True
    """Scale the managed node group with cluster-autoscaler (false when Karpenter runs the
    nodes: components/aws/karpenter.py)."""
    service_role_arn: str | None = None
    """IAM role for the agent service's pods (`serviceAccountRoleArn`), given through Pod
    Identity to `service_namespace/service_account`."""
    service_namespace: str = ""
    service_account: str = ""
    rollouts_namespace: str | None = None
    """Where the Argo Rollouts controller runs (canary releases): its service account gets a
    read-only view of the load balancers, to verify each traffic shift on the ALB."""
    rollouts_service_account: str = ""
    crd_provider: k8s.Provider | None = None
    """The provider the load balancer controller's CRDs are applied with: one that adopts the
    CRDs an earlier chart install made (components/aws/load_balancer_controller.py)."""
    gateway_class: str | None = None
    """With `edge: gateway`: the name of the ALB GatewayClass to create."""


class ClusterAddons(pulumi.ComponentResource):
    """AWS Load Balancer Controller, metrics-server, cluster-autoscaler and a default gp3 class;
    the controllers get their AWS roles through EKS Pod Identity.

    Node autoscaling uses cluster-autoscaler on the managed node group: the node group stays the
    one place node settings live, and scaling needs no extra CRDs, queues or controller nodes.
    """

    def __init__(self, name: str, args: ClusterAddonsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:cluster_addons:ClusterAddons", name, None, opts)
        self._name = name
        self._args = args

        alb = self._pod_identity("alb-controller", SYSTEM_NAMESPACE, ALB_SERVICE_ACCOUNT,
                                 alb_controller_policy())
        crds = controller_crds(f"{name}-alb-controller-crds", args.crd_provider,
                               pulumi.ResourceOptions(parent=self))
        self.alb_controller = self._release(ALB_CONTROLLER_CHART, {
            "clusterName": args.cluster_name,
            "region": args.region,
            "vpcId": args.vpc_id,
            "replicaCount": 2,
            "serviceAccount": {"name": ALB_SERVICE_ACCOUNT},
            "podAnnotations": {AWS_ROLE_ANNOTATION: alb.role_arn},
            # Services of type LoadBalancer are not how traffic enters this platform.
            "enableServiceMutatorWebhook": False,
            "podDisruptionBudget": {"maxUnavailable": 1},
        }, depends_on=[alb, crds], skip_crds=True)
        if args.gateway_class:
            alb_gateway_class(f"{name}-alb-gateway-class", args.gateway_class,
                              pulumi.ResourceOptions(parent=self,
                                                     depends_on=[self.alb_controller]))
        self._release(METRICS_SERVER_CHART, {
            "replicas": 2,
            "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
        })
        if args.cluster_autoscaler:
            autoscaler = self._pod_identity("cluster-autoscaler", SYSTEM_NAMESPACE,
                                            AUTOSCALER_SERVICE_ACCOUNT,
                                            cluster_autoscaler_policy(args.cluster_name))
            self._release(CLUSTER_AUTOSCALER_CHART, {
                "cloudProvider": "aws",
                "awsRegion": args.region,
                # The autoscaler's minor must be the cluster's (components/versions.py).
                "image": {"tag": CLUSTER_AUTOSCALER_IMAGE_TAGS[args.kubernetes_version]},
                "autoDiscovery": {"clusterName": args.cluster_name},
                "rbac": {"serviceAccount": {"name": AUTOSCALER_SERVICE_ACCOUNT}},
                "podAnnotations": {AWS_ROLE_ANNOTATION: autoscaler.role_arn},
                "extraArgs": {"balance-similar-node-groups": True, "expander": "least-waste",
                              "skip-nodes-with-system-pods": False},
            }, depends_on=[autoscaler])
        if args.service_role_arn:
            associate(f"{name}-service-pod-identity", cluster_name=args.cluster,
                      namespace=args.service_namespace, service_account=args.service_account,
                      role_arn=args.service_role_arn, tags=args.tags,
                      opts=pulumi.ResourceOptions(parent=self))
        if args.rollouts_namespace:
            self._pod_identity("argo-rollouts", args.rollouts_namespace,
                               args.rollouts_service_account, ROLLOUTS_POLICY)
        if args.keda:
            self._release(KEDA_CHART, {
                "operator": {"replicaCount": 2},
                "metricsServer": {"replicaCount": 2},
                "podDisruptionBudget": {"operator": {"maxUnavailable": 1},
                                        "metricServer": {"maxUnavailable": 1}},
            }, namespace=KEDA_NAMESPACE)
        k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="gp3", annotations={
                "storageclass.kubernetes.io/is-default-class": "true"}),
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true", "fsType": "ext4"},
            # Bind only once the pod is scheduled, so the volume is made in the pod's zone.
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Retain",
            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})

    def _pod_identity(self, role: str, namespace: str, service_account: str,
                      policy: dict[str, Any]) -> aws.eks.PodIdentityAssociation:
        """A role for one controller's service account, and its association."""
        iam_role = pod_identity_role(f"{self._name}-{role}-pod-identity", inline_policy=policy,
                                     tags=self._args.tags,
                                     opts=pulumi.ResourceOptions(parent=self))
        return associate(f"{self._name}-{role}-pod-identity", cluster_name=self._args.cluster,
                         namespace=namespace, service_account=service_account,
                         role_arn=iam_role.arn, tags=self._args.tags,
                         opts=pulumi.ResourceOptions(parent=iam_role))

    def _release(self, chart: tuple[str, str, str], values: Mapping[str, Any],
                 namespace: str = SYSTEM_NAMESPACE,
                 depends_on: Sequence[pulumi.Resource] = (),
                 skip_crds: bool = False) -> k8s.helm.v3.Release:
        chart_name, version, repo = chart
        return controller_release(f"{self._name}-{chart_name}", chart_name, version, repo,
                                  values=values, namespace=namespace, skip_crds=skip_crds,
                                  opts=pulumi.ResourceOptions(parent=self,
                                                              depends_on=list(depends_on)))


def controller_release(resource_name: str, chart: str, version: str, repo: str, *,
                       values: Mapping[str, Any], namespace: str = SYSTEM_NAMESPACE,
                       skip_crds: bool = False,
                       opts: pulumi.ResourceOptions) -> k8s.helm.v3.Release:
    """A cluster controller's pinned chart, from a Helm repository or an OCI registry
    (`oci://...`), rolled back whole if an upgrade fails. A controller's pods start after their
    Pod Identity association exists (`opts.depends_on`), or they would start without
    credentials."""
    oci = repo.startswith("oci://")
    return k8s.helm.v3.Release(
        resource_name,
        name=chart,
        chart=f"{repo}/{chart}" if oci else chart,
        version=version,
        namespace=namespace,
        create_namespace=namespace != SYSTEM_NAMESPACE,
        repository_opts=None if oci else k8s.helm.v3.RepositoryOptsArgs(repo=repo),
        values=dict(values),
        # Only when asked: CRDs managed by a chart of their own.
        skip_crds=skip_crds or None,
        # Roll back a failed upgrade instead of leaving a half-applied controller.
        atomic=True,
        cleanup_on_fail=True,
        timeout=600,
        opts=opts)
