"""The Argo Rollouts controller, built from its release's own manifests.

Argo publishes each release's CRDs and controller manifests in its repository (and Go module);
its Helm chart lives elsewhere, versioned apart from the controller. The program applies the
release's CRDs as shipped (vendored in rollouts_crds/<version>/, refreshed by `make
vendor-rollouts`) and writes the controller's objects itself, so they are hardened like every
other pod of the platform and its RBAC is the release's ClusterRole minus what we do not use:
no traffic routers but the ALB, no cluster-wide read of Secrets (the notification Secret and
ConfigMap are read in the controller's own namespace), no Ingress creation (nginx canaries
only). tests/test_progressive_delivery.py checks every rule we grant is one the release asks for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes.hardening import restricted_container, restricted_pod
from components.kubernetes.peers import (
    dns_egress,
    kube_api_egress,
    namespace_peer,
    pod_identity_agent_egress,
    ports,
)
from components.labels import PLATFORM_LABELS, PSA_RESTRICTED
from components.manifests import vendored_files

ROLLOUTS_VERSION = "v1.10.2"
ROLLOUTS_IMAGE = "quay.io/argoproj/argo-rollouts:v1.10.2"
ROLLOUTS_NAMESPACE = "argo-rollouts"
CONTROLLER = "argo-rollouts"
ROLLOUTS_SERVICE_ACCOUNT = CONTROLLER
METRICS_PORT = 8090
PROMETHEUS_PORT = 9090
CRD_DIRECTORY = Path(__file__).parent / "rollouts_crds" / ROLLOUTS_VERSION
_LABELS = {"app.kubernetes.io/name": CONTROLLER, "app.kubernetes.io/component": "controller",
           **PLATFORM_LABELS}
_SELECTOR = {"app.kubernetes.io/name": CONTROLLER}
METRICS_SELECTOR = _SELECTOR
"""Labels of the controller's metrics Service (and its pods)."""

_READ = ["get", "list", "watch"]
_WRITE = ["create", "get", "list", "watch", "update", "patch", "delete"]
# (apiGroups, resources, verbs): each a subset of the release's ClusterRole.
CLUSTER_RULES: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    (("argoproj.io",), ("rollouts", "rollouts/status", "rollouts/finalizers"),
     ("get", "list", "watch", "update", "patch")),
    (("argoproj.io",), ("analysisruns", "analysisruns/finalizers", "experiments",
                        "experiments/finalizers"), tuple(_WRITE)),
    (("argoproj.io",), ("analysistemplates", "clusteranalysistemplates"), tuple(_READ)),
    (("apps",), ("replicasets",), tuple(_WRITE)),
    # workloadRef: the Rollout reads its template from the Deployment and scales it down.
    (("", "apps"), ("deployments", "podtemplates"), ("get", "list", "watch", "update")),
    # Points the stable and canary Services at their ReplicaSets.
    (("",), ("services",), ("get", "list", "watch", "patch", "create", "delete")),
    (("coordination.k8s.io",), ("leases",), ("create", "get", "update")),
    (("",), ("pods",), ("list", "update", "watch")),
    (("",), ("pods/eviction",), ("create",)),
    (("",), ("events",), ("create", "update", "patch")),
    # The ALB's weights live in an annotation of the API's Ingress.
    (("networking.k8s.io",), ("ingresses",), ("get", "list", "watch", "update", "patch")),
    # Analysis runs of the job provider (unused by our templates, informed at start-up).
    (("batch",), ("jobs",), ("create", "get", "list", "watch", "update", "patch", "delete")),
    (("",), ("endpoints",), ("get",)),
    (("elbv2.k8s.aws",), ("targetgroupbindings",), ("list", "get")),
)


@dataclass(kw_only=True)
class RolloutsControllerArgs:
    monitoring_namespace: str
    """Where Prometheus runs: it scrapes the controller and answers its analyses."""
    replicas: int = 2
    """Two, with leader election: a rollout in progress survives a node drain."""
    probes: Sequence[tuple[str, int]] = ()
    """(namespace, pod port) its web analyses call: a blue-green preview's /ready."""
    start_after: Sequence[pulumi.Resource] = ()
    """What the controller's pods must not start before: on AWS its Pod Identity association,
    or they would start without credentials."""
    aws_region: pulumi.Input[str] | None = None
    """On AWS: after each traffic shift the controller reads the ALB's target groups back
    (`--aws-verify-target-group`, through its Pod Identity role) before it moves on or scales
    the old pods down, so a delayed target registration cannot cost requests."""


class RolloutsController(pulumi.ComponentResource):
    """Argo Rollouts' CRDs and controller in the `argo-rollouts` namespace."""

    crds: pulumi.Resource
    """Custom resources of Argo Rollouts depend on this."""

    def __init__(self, name: str, args: RolloutsControllerArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:rollouts_controller:RolloutsController", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.crds = k8s.yaml.v2.ConfigGroup(
            f"{name}-crds", files=vendored_files([CRD_DIRECTORY]), opts=child)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata=k8s.meta.v1.ObjectMetaArgs(
                name=ROLLOUTS_NAMESPACE, labels={**PSA_RESTRICTED, **PLATFORM_LABELS}),
            opts=child)
        meta = k8s.meta.v1.ObjectMetaArgs(name=CONTROLLER, namespace=namespace.metadata.name,
                                          labels=_LABELS)
        account = k8s.core.v1.ServiceAccount(f"{name}-account", metadata=meta, opts=child)
        subject = k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=CONTROLLER,
                                          namespace=ROLLOUTS_NAMESPACE)
        role = k8s.rbac.v1.ClusterRole(
            f"{name}-cluster-role",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=CONTROLLER, labels=_LABELS),
            rules=[k8s.rbac.v1.PolicyRuleArgs(api_groups=list(groups), resources=list(res),
                                              verbs=list(verbs))
                   for groups, res, verbs in CLUSTER_RULES],
            opts=child)
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-cluster-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=CONTROLLER, labels=_LABELS),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io",
                                             kind="ClusterRole", name=role.metadata.name),
            subjects=[subject], opts=child)
        # Notifications read one Secret and one ConfigMap, in this namespace only.
        local_role = k8s.rbac.v1.Role(
            f"{name}-role", metadata=meta,
            rules=[k8s.rbac.v1.PolicyRuleArgs(api_groups=[""],
                                              resources=["secrets", "configmaps"], verbs=_READ)],
            opts=child)
        k8s.rbac.v1.RoleBinding(
            f"{name}-binding", metadata=meta,
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io",
                                             kind="Role", name=local_role.metadata.name),
            subjects=[subject], opts=child)
        k8s.core.v1.ConfigMap(
            f"{name}-config", metadata=k8s.meta.v1.ObjectMetaArgs(
                name="argo-rollouts-config", namespace=namespace.metadata.name, labels=_LABELS),
            data={}, opts=child)
        flags: list[pulumi.Input[str]] = ["--leader-elect"]
        if args.aws_region is not None:
            flags += ["--aws-verify-target-group",
                      pulumi.Output.concat("--aws-region=", args.aws_region)]
        self._deployment(name, namespace.metadata.name, account.metadata.name, args.replicas,
                         flags, pulumi.ResourceOptions(
                             parent=self, depends_on=[self.crds, *args.start_after]))
        if args.replicas > 1:
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-controller", metadata=meta,
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    max_unavailable=1,
                    selector=k8s.meta.v1.LabelSelectorArgs(match_labels=_SELECTOR)),
                opts=child)
        self._network_policies(name, namespace.metadata.name, args.monitoring_namespace,
                               args.probes, aws=args.aws_region is not None)
        k8s.core.v1.Service(
            f"{name}-metrics", metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{CONTROLLER}-metrics", namespace=namespace.metadata.name,
                labels=_LABELS),
            spec=k8s.core.v1.ServiceSpecArgs(selector=_SELECTOR, ports=[
                k8s.core.v1.ServicePortArgs(name="metrics", port=METRICS_PORT,
                                            target_port="metrics")]),
            opts=child)
        self.register_outputs({})

    def _network_policies(self, name: str, namespace: pulumi.Input[str],
                          monitoring_namespace: str, probes: Sequence[tuple[str, int]], *,
                          aws: bool) -> None:
        """Deny by default; the controller reaches DNS, the Kubernetes API (443 on EKS, 6443 on
        local clusters; on AWS 443 is also the ELB API), Prometheus, which alone may scrape it,
        and on AWS the node's Pod Identity agent for its credentials."""
        monitoring = namespace_peer(monitoring_namespace)
        policies = {
            "default-deny": k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                policy_types=["Ingress", "Egress"]),
            "controller": k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=_SELECTOR),
                policy_types=["Ingress", "Egress"],
                ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[monitoring], ports=ports(METRICS_PORT))],
                egress=[
                    dns_egress(),
                    # On AWS 443 is also the ELB API (target-group verification).
                    kube_api_egress(),
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        to=[monitoring], ports=ports(PROMETHEUS_PORT)),
                    *[k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        to=[namespace_peer(probed)], ports=ports(port))
                      for probed, port in probes],
                    *([pod_identity_agent_egress()] if aws else [])]),
        }
        for policy, spec in policies.items():
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{policy}", metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=policy, namespace=namespace, labels=_LABELS),
                spec=spec, opts=pulumi.ResourceOptions(parent=self))

    def _deployment(self, name: str, namespace: pulumi.Input[str],
                    account: pulumi.Input[str], replicas: int,
                    flags: list[pulumi.Input[str]], opts: pulumi.ResourceOptions) -> None:
        probe = k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path="/healthz", port="healthz"),
            period_seconds=20, timeout_seconds=10, failure_threshold=3)
        k8s.apps.v1.Deployment(
            f"{name}-controller",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=CONTROLLER, namespace=namespace,
                                                labels=_LABELS),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=replicas,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=_SELECTOR),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels={**_SELECTOR, **_LABELS}),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=account,
                        # The image's own non-root user.
                        security_context=restricted_pod(),
                        topology_spread_constraints=[k8s.core.v1.TopologySpreadConstraintArgs(
                            topology_key="topology.kubernetes.io/zone", max_skew=1,
                            when_unsatisfiable="ScheduleAnyway",
                            label_selector=k8s.meta.v1.LabelSelectorArgs(
                                match_labels=_SELECTOR))],
                        containers=[k8s.core.v1.ContainerArgs(
                            name=CONTROLLER, image=ROLLOUTS_IMAGE,
                            image_pull_policy="IfNotPresent",
                            # One active controller; the other takes over within seconds.
                            args=flags,
                            ports=[k8s.core.v1.ContainerPortArgs(name="metrics",
                                                                 container_port=METRICS_PORT),
                                   k8s.core.v1.ContainerPortArgs(name="healthz",
                                                                 container_port=8080)],
                            liveness_probe=probe,
                            readiness_probe=probe,
                            resources=k8s.core.v1.ResourceRequirementsArgs(
                                requests={"cpu": "50m", "memory": "128Mi"},
                                limits={"memory": "512Mi", "ephemeral-storage": "1Gi"}),
                            security_context=restricted_container(run_as_non_root=True),
                            volume_mounts=[
                                k8s.core.v1.VolumeMountArgs(
                                    name="plugin-bin", mount_path="/home/argo-rollouts/plugin-bin"),
                                k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")])],
                        volumes=[k8s.core.v1.VolumeArgs(
                            name=v, empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs())
                            for v in ("plugin-bin", "tmp")]))),
            opts=opts)
