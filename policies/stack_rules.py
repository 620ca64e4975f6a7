"""Stack rules: relations between resources that no single resource can show."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from common import kubernetes_kind, pod_spec
from replacement_rules import CONTENT_KINDS, DEPENDENT_KINDS, has_fixed_name, kind_of
from support_calendar import EKS_VERSION_POLICY

ZONE_KEY = "topology.kubernetes.io/zone"
COMPONENT_LABEL = "app.kubernetes.io/component"
SERVING_COMPONENTS = ("api", "worker")


class KubeObject:
    """A Kubernetes object of the stack, read the way these rules need it."""

    def __init__(self, resource: PolicyResource) -> None:
        self.resource = resource
        self.kind = resource.resource_type.rsplit(":", 1)[-1]
        self.props: Mapping[str, Any] = resource.props
        metadata = self.props.get("metadata") or {}
        self.name: str = metadata.get("name") or resource.name
        self.namespace: str = metadata.get("namespace") or "default"
        self.labels: Mapping[str, str] = metadata.get("labels") or {}

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.props.get("spec") or {}

    @property
    def pod_labels(self) -> Mapping[str, str]:
        return ((self.spec.get("template") or {}).get("metadata") or {}).get("labels") or {}


def kube_objects(args: StackValidationArgs, *kinds: str) -> Iterator[KubeObject]:
    for resource in args.resources:
        kind = kubernetes_kind(resource)
        if kind in kinds:
            yield KubeObject(resource)


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    match = selector.get("matchLabels") or {}
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def rollout_workloads(args: StackValidationArgs) -> dict[tuple[str, str], str]:
    """The Deployment each Argo Rollout takes its pods from (`workloadRef`), keyed by the
    Rollout's (namespace, name)."""
    return {(r.namespace, r.name): str(ref.get("name"))
            for r in kube_objects(args, "Rollout")
            if (ref := r.spec.get("workloadRef") or {}).get("kind") == "Deployment"}


def _autoscalers(args: StackValidationArgs) -> dict[tuple[str, str], Mapping[str, Any]]:
    """HPA specs keyed by the (namespace, Deployment name) they scale.

    A KEDA ScaledObject counts as one: KEDA creates the HPA in the cluster, so the stack holds
    only the ScaledObject. Its `minReplicaCount` is read as `minReplicas`. An autoscaler of a
    Rollout that runs a Deployment's pods counts for that Deployment.
    """
    rollouts = rollout_workloads(args)

    def deployment(namespace: str, target: Mapping[str, Any]) -> tuple[str, str] | None:
        name = str(target.get("name"))
        kind = target.get("kind", "Deployment")
        if kind == "Rollout":
            workload = rollouts.get((namespace, name))
            return (namespace, workload) if workload else None
        return (namespace, name) if kind == "Deployment" else None

    found: dict[tuple[str, str], Mapping[str, Any]] = {}
    for hpa in kube_objects(args, "HorizontalPodAutoscaler"):
        if key := deployment(hpa.namespace, hpa.spec.get("scaleTargetRef") or {}):
            found[key] = hpa.spec
    for scaled in kube_objects(args, "ScaledObject"):
        if key := deployment(scaled.namespace, scaled.spec.get("scaleTargetRef") or {}):
            # KEDA's default minimum is 0.
            found[key] = {"minReplicas": scaled.spec.get("minReplicaCount", 0)}
    return found


def _minimum_replicas(deployment: KubeObject, hpas: Mapping[tuple[str, str], Any]) -> int:
    hpa = hpas.get((deployment.namespace, deployment.name))
    if hpa is not None:
        return int(hpa.get("minReplicas", 1))
    return int(deployment.spec.get("replicas", 1))


def replicated_workloads_have_pdb(args: StackValidationArgs, report: ReportViolation) -> None:
    budgets = list(kube_objects(args, "PodDisruptionBudget"))
    hpas = _autoscalers(args)
    for workload in kube_objects(args, "Deployment", "StatefulSet"):
        if _minimum_replicas(workload, hpas) <= 1:
            continue
        if not any(b.namespace == workload.namespace and
                   _selects(b.spec.get("selector") or {}, workload.pod_labels) for b in budgets):
            report(f"{workload.kind} {workload.namespace}/{workload.name} runs several replicas "
                   "but no PodDisruptionBudget selects its pods: a node drain may take them all "
                   "at once. Add a PDB (e.g. maxUnavailable: 1).", workload.resource.urn)


def namespaces_default_deny(args: StackValidationArgs, report: ReportViolation) -> None:
    denied = {p.namespace for p in kube_objects(args, "NetworkPolicy")
              if not (p.spec.get("podSelector") or {})
              and {"Ingress", "Egress"} <= set(p.spec.get("policyTypes") or [])
              and not p.spec.get("ingress") and not p.spec.get("egress")}
    for resource in args.resources:
        kind = kubernetes_kind(resource)
        if kind is None or pod_spec(kind, resource.props) is None:
            continue
        workload = KubeObject(resource)
        if workload.namespace not in denied:
            report(f"Namespace {workload.namespace!r} runs {kind} {workload.name} but has no "
                   "default-deny NetworkPolicy (podSelector {}, policyTypes Ingress and Egress, "
                   "no rules): add one and allow only the traffic it needs.",
                   resource.urn)
            denied.add(workload.namespace)  # one report per namespace


def api_has_autoscaler(args: StackValidationArgs, report: ReportViolation) -> None:
    hpas = _autoscalers(args)
    for deployment in kube_objects(args, "Deployment"):
        if deployment.pod_labels.get(COMPONENT_LABEL) == "api" and \
                (deployment.namespace, deployment.name) not in hpas:
            report(f"API Deployment {deployment.namespace}/{deployment.name} has no "
                   "HorizontalPodAutoscaler: add one so load spikes add pods.",
                   deployment.resource.urn)


def serving_workloads_highly_available(args: StackValidationArgs,
                                       report: ReportViolation) -> None:
    if not args.get_config().get("required", True):
        return
    minimum = int(args.get_config().get("minimumReplicas", 2))
    hpas = _autoscalers(args)
    for deployment in kube_objects(args, "Deployment"):
        if deployment.pod_labels.get(COMPONENT_LABEL) not in SERVING_COMPONENTS:
            continue
        where = f"Deployment {deployment.namespace}/{deployment.name}"
        replicas = _minimum_replicas(deployment, hpas)
        if replicas < minimum:
            report(f"{where} may run {replicas} replica(s); this stack needs at least "
                   f"{minimum}: raise replicas or the HPA's minReplicas.", deployment.resource.urn)
        pod = (deployment.spec.get("template") or {}).get("spec") or {}
        keys = {c.get("topologyKey") for c in pod.get("topologySpreadConstraints") or []}
        if ZONE_KEY not in keys:
            report(f"{where} is not spread over zones: add a topologySpreadConstraint on "
                   f"{ZONE_KEY}.", deployment.resource.urn)


MONITOR_SELECTORS = {"ServiceMonitor": "serviceMonitorSelector",
                     "PodMonitor": "podMonitorSelector", "PrometheusRule": "ruleSelector"}
PROMETHEUS_CHART = "kube-prometheus-stack"


def monitors_are_selected(args: StackValidationArgs, report: ReportViolation) -> None:
    releases = [r for r in args.resources if r.resource_type == "kubernetes:helm.sh/v3:Release"
                and r.props.get("chart") == PROMETHEUS_CHART]
    if len(releases) != 1:
        return
    release = releases[0]
    values = release.props.get("values") or {}
    spec = (values.get("prometheus") or {}).get("prometheusSpec") or {}
    for monitor in kube_objects(args, *MONITOR_SELECTORS):
        field = MONITOR_SELECTORS[monitor.kind]
        # Without an explicit selector the chart selects its own release label.
        selector = spec.get(field, {"matchLabels": {"release": release.props.get("name")}})
        if selector == {}:
            continue  # an empty selector selects everything
        if not _selects(selector, monitor.labels):
            report(f"{monitor.kind} {monitor.namespace}/{monitor.name} lacks the labels "
                   f"{dict(selector.get('matchLabels') or {})} that Prometheus's {field} "
                   "requires: Prometheus would silently ignore it. Add them.",
                   monitor.resource.urn)


def _dependencies(resource: PolicyResource) -> list[PolicyResource]:
    found = {d.urn: d for d in resource.dependencies or []}
    for deps in (resource.property_dependencies or {}).values():
        found.update({d.urn: d for d in deps})
    return list(found.values())


def workload_dependencies_replace_safely(args: StackValidationArgs,
                                         report: ReportViolation) -> None:
    for resource in args.resources:
        kind = kind_of(resource.resource_type)
        if kind not in DEPENDENT_KINDS:
            continue
        for dependency in _dependencies(resource):
            dependency_kind = kind_of(dependency.resource_type)
            if dependency_kind not in CONTENT_KINDS or not has_fixed_name(dependency.props):
                continue
            name = (dependency.props.get("metadata") or {}).get("name")
            report(f"{kind} {resource.name} depends on {dependency_kind} {name!r}, which has a "
                   f"fixed metadata.name: whenever its content changes pulumi-kubernetes "
                   f"replaces it delete-before-replace, and the engine deletes and recreates "
                   f"{resource.name} with it (an outage). Leave metadata.name unset so it is "
                   "auto-named (create-before-delete) and reference it by its output name.",
                   resource.urn)


STACK_POLICIES = [
    EKS_VERSION_POLICY,
    StackValidationPolicy(
        name="replicated-workloads-have-pdb",
        description="Every Deployment or StatefulSet with more than one replica has a PDB.",
        validate=replicated_workloads_have_pdb, severity=Severity.HIGH,
        remediation_steps="Add a PodDisruptionBudget selecting the pods."),
    StackValidationPolicy(
        name="namespaces-default-deny",
        description="Every namespace that runs workloads has a default-deny NetworkPolicy.",
        validate=namespaces_default_deny, severity=Severity.HIGH,
        remediation_steps="Add a NetworkPolicy with an empty podSelector denying both ways."),
    StackValidationPolicy(
        name="api-has-autoscaler",
        description="The API Deployment is scaled by a HorizontalPodAutoscaler.",
        validate=api_has_autoscaler, severity=Severity.MEDIUM,
        remediation_steps="Add an HPA targeting the API Deployment."),
    StackValidationPolicy(
        name="serving-workloads-highly-available",
        description="API and worker Deployments keep 2+ replicas spread over zones.",
        validate=serving_workloads_highly_available, severity=Severity.HIGH,
        remediation_steps="Raise replicas/minReplicas and spread over topology.kubernetes.io/zone.",
        config_schema=PolicyConfigSchema(properties={
            "required": {"type": "boolean", "default": True},
            "minimumReplicas": {"type": "integer", "default": 2, "minimum": 1}})),
    StackValidationPolicy(
        name="monitors-are-selected",
        description="ServiceMonitors, PodMonitors and PrometheusRules carry the labels "
                    "kube-prometheus-stack's Prometheus selects.",
        validate=monitors_are_selected, severity=Severity.HIGH,
        remediation_steps="Label the object with the chart's selector (release: <release>)."),
    StackValidationPolicy(
        name="k8s-workload-dependencies-replace-safely",
        description="No workload or Helm release depends on a fixed-name ConfigMap, Secret or "
                    "Job, whose every content change would replace the workload with it.",
        validate=workload_dependencies_replace_safely, severity=Severity.CRITICAL,
        remediation_steps="Auto-name the ConfigMap/Secret/Job (omit metadata.name) and pass "
                          "its metadata.name output to the workload."),
]
