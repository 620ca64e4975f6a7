"""Day 2: what `pulumi up` does to a running stack when a user changes something routine.

Each stack is rendered before and after a change and the plan derived as the engine would derive
it (tests/plan.py, with pulumi-kubernetes' replacement table from policies/replacement_rules.py).
The rule throughout: a change that is not a new image never deletes a Deployment or StatefulSet,
and nothing is replaced delete-before-replace except what the change itself must replace.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import pytest
from plan import plan, summary

from harness import STACKS, Rendered, render
from replacement_rules import CONTENT_KINDS, DEPENDENT_KINDS, has_fixed_name, kind_of

DIGEST_A = "registry.example.com/agent-service@sha256:" + "a" * 64
DIGEST_B = "registry.example.com/agent-service@sha256:" + "b" * 64
OPENAI = {"llmProviders": ["openai", "offline"]}
WORKLOADS = {"Deployment/agent-api", "Deployment/agent-worker"}
NEW_CONFIG = {"ConfigMap/agent-config", "Job/agent-migrate"}
# With canary releases (dev, prod) every new pod template also runs a new release gate, which
# waits for the Rollouts' verdict (components/kubernetes/service/release_gate.py).
GATE = "Job/agent-rollout-gate"


def released(stack: str, expected: dict[str, set[str]]) -> dict[str, set[str]]:
    """`expected` as a stack with canary releases sees it."""
    if stack == "local" or not any(w.startswith("Deployment/")
                                   for w in expected.get("update", ())):
        return expected
    return {**expected, "replace": {*expected.get("replace", ()), GATE}}


@pytest.fixture(scope="module")
def openai_stacks() -> dict[str, Rendered]:
    """Each stack with the openai provider and a key, the base for the rotation cases."""
    return {stack: render(stack, OPENAI, {"openaiApiKey": "sk-first-key-0000000000"})
            for stack in STACKS}


# (change, overrides, secrets, expected plan). Expected: {op: {Kind/logical-name}}, where op is
# update, replace (create-before-delete) or replace-delete-first.
CHANGES: list[tuple[str, Mapping[str, Any], Mapping[str, str], dict[str, set[str]]]] = [
    ("a config value", {"logLevel": "WARNING"}, {},
     {"replace": NEW_CONFIG, "update": WORKLOADS}),
    ("worker concurrency", {"workerConcurrency": 16}, {},
     {"replace": NEW_CONFIG, "update": WORKLOADS}),
    ("replica bounds", {"apiMaxReplicas": 20}, {},
     {"update": {"HorizontalPodAutoscaler/agent-api"}}),
    ("API resource requests", {"apiCpuRequest": "300m", "apiCpuLimit": "3"}, {},
     {"replace": {"Job/agent-migrate"}, "update": {"Deployment/agent-api"}}),
    ("worker resource requests", {"workerMemoryRequest": "900Mi"}, {},
     {"update": {"Deployment/agent-worker"}}),
    ("the ingress host", {"ingressHost": "agents.example.com"}, {},
     {"update": {"Ingress/agent-api"}}),
]


def assert_no_outage(steps: Mapping[str, Any]) -> None:
    """Nothing that serves or holds data is deleted, and no cascade of replacements starts."""
    for step in steps.values():
        kind = kind_of(step.resource.type) or ""
        assert step.op != "delete", f"{step.resource.urn} would be deleted"
        assert step.cascaded_from is None, (
            f"{step.resource.urn} would be replaced because {step.cascaded_from} is deleted "
            "before it is replaced")
        if kind in ("Deployment", "StatefulSet", "Release"):
            assert step.op == "update", f"{step.resource.urn}: {step.op} {step.reasons}"


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(("change", "overrides", "secrets", "expected"), CHANGES,
                         ids=[c[0] for c in CHANGES])
def test_routine_changes_roll_in_place(stacks: dict[str, Rendered], stack: str, change: str,
                                       overrides: Mapping[str, Any], secrets: Mapping[str, str],
                                       expected: dict[str, set[str]]) -> None:
    if change == "the ingress host":
        if stack == "local":
            overrides = {"ingressHost": "agents.localhost"}
        if stack == "prod":
            expected = {}  # prod serves no Ingress until a certificate is configured
    steps = plan(stacks[stack], render(stack, overrides, secrets))
    assert summary(steps) == released(stack, expected)
    assert_no_outage(steps)


@pytest.mark.parametrize("stack", STACKS)
def test_rotating_an_llm_key_rolls_the_pods(openai_stacks: dict[str, Rendered],
                                            stack: str) -> None:
    rotated = render(stack, OPENAI, {"openaiApiKey": "sk-second-key-111111111"})
    steps = plan(openai_stacks[stack], rotated)
    # KEDA (AWS stacks) reads the Redis password from the Secret by name: updated in place.
    keda = {"TriggerAuthentication/agent-worker-redis-auth"} if stack != "local" else set()
    assert summary(steps) == released(stack, {
        "replace": {"Secret/agent-secrets", "Job/agent-migrate"}, "update": WORKLOADS | keda})
    assert_no_outage(steps)
    # The new Secret's name is in the pod templates: that is what rolls the pods.
    secret = rotated.named("agent-secrets", "kubernetes:core/v1:Secret").k8s_name
    for step in steps.values():
        if step.resource.type.endswith(":Deployment"):
            (main,) = step.resource.inputs["spec"]["template"]["spec"]["containers"]
            assert {"secretRef": {"name": secret}} in main["envFrom"]


@pytest.mark.parametrize("stack", STACKS)
def test_a_new_image_runs_a_new_migration_then_updates_the_deployments(stack: str) -> None:
    before = render(stack, {"imageRef": DIGEST_A})
    steps = plan(before, render(stack, {"imageRef": DIGEST_B}))
    assert summary(steps) == released(stack, {"replace": {"Job/agent-migrate"},
                                              "update": WORKLOADS})
    assert_no_outage(steps)
    job = next(s for s in steps.values() if s.resource.name == "agent-migrate")
    assert not job.delete_before_replace
    # The Deployments wait for the new Job: no pod runs against an older schema.
    for step in steps.values():
        if step.resource.type.endswith(":Deployment"):
            assert job.resource.urn in step.resource.dependency_urns


def test_a_minimum_above_one_adds_a_disruption_budget(stacks: dict[str, Rendered]) -> None:
    steps = plan(stacks["local"], render("local", {"apiMinReplicas": 2}))
    assert summary(steps) == {"create": {"PodDisruptionBudget/agent-api"},
                              "update": {"HorizontalPodAutoscaler/agent-api"}}
    assert_no_outage(steps)


def test_alert_receivers_upgrade_the_monitoring_release_in_place(
        stacks: dict[str, Rendered]) -> None:
    steps = plan(stacks["prod"], render("prod", {}, {
        "alertSlackWebhookUrl": "https://hooks.slack.com/services/T0/B0/abc"}))
    assert summary(steps) == {"replace": {"Secret/monitoring-alertmanager-config"},
                              "update": {"Release/monitoring-kube-prometheus-stack"}}
    assert_no_outage(steps)


def test_a_new_tracing_token_upgrades_the_collector_in_place() -> None:
    otlp = {"tracingBackend": "otlp", "tracingOtlpEndpoint": "https://tempo.example.com:4318",
            "tracingOtlpAuthHeader": "authorization"}
    before = render("prod", otlp, {"tracingOtlpAuthToken": "Bearer one"})
    steps = plan(before, render("prod", otlp, {"tracingOtlpAuthToken": "Bearer two"}))
    assert summary(steps) == {"replace": {"Secret/tracing-auth"},
                              "update": {"Release/tracing-collector"}}
    assert_no_outage(steps)


def test_a_new_jaeger_retention_rolls_jaeger_in_place(stacks: dict[str, Rendered]) -> None:
    steps = plan(stacks["prod"], render("prod", {"tracingRetentionHours": 96}))
    assert summary(steps) == {"replace": {"ConfigMap/tracing-jaeger-config"},
                              "update": {"StatefulSet/tracing-jaeger"}}
    assert_no_outage(steps)


def test_a_local_volume_size_replaces_only_the_data_stores(stacks: dict[str, Rendered]) -> None:
    # volumeClaimTemplates are immutable: the StatefulSets themselves must be replaced (their
    # PVCs stay, being retained by Kubernetes), but nothing that depends on them may follow.
    steps = plan(stacks["local"], render("local", {"localVolumeSize": "4Gi"}))
    assert summary(steps) == {"replace-delete-first": {"StatefulSet/data-postgres",
                                                       "StatefulSet/data-valkey"}}
    assert all(step.cascaded_from is None for step in steps.values())


@pytest.mark.parametrize("stack", STACKS)
def test_an_unchanged_stack_plans_nothing(stacks: dict[str, Rendered], stack: str) -> None:
    assert plan(stacks[stack], render(stack)) == {}


# --- the static rule, over every stack and every optional part ---------------------------------

VARIANTS: list[tuple[str, Mapping[str, Any], Mapping[str, str]]] = [
    *((stack, {}, {}) for stack in STACKS),
    ("local", {"tracingEnabled": True}, {}),
    ("prod", {"tracingBackend": "otlp", "tracingOtlpEndpoint": "https://tempo.example.com:4318",
              "tracingOtlpAuthHeader": "authorization"}, {"tracingOtlpAuthToken": "Bearer x"}),
    ("prod", {"kedaEnabled": False}, {}),
]


@pytest.mark.parametrize(("stack", "overrides", "secrets"), VARIANTS)
def test_no_workload_depends_on_a_fixed_name_content_object(
        stack: str, overrides: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
    rendered = render(stack, overrides, secrets)
    by_urn = rendered.by_urn()
    for resource in rendered.resources:
        if kind_of(resource.type) not in DEPENDENT_KINDS:
            continue
        for urn in resource.dependency_urns:
            dependency = by_urn.get(urn)
            if dependency is None or kind_of(dependency.type) not in CONTENT_KINDS:
                continue
            assert not has_fixed_name(dependency.inputs), (
                f"{resource.urn} depends on {dependency.urn}, whose fixed name makes each "
                "content change a delete-before-replace that replaces the dependent too")


@pytest.mark.parametrize("stack", STACKS)
def test_autoscaled_replicas_are_the_autoscalers(stacks: dict[str, Rendered], stack: str) -> None:
    """HPA-owned replicas are never drift: the program sets none and ignores the field, so a
    refreshed preview after the HPA (or `kubectl scale`) moved it shows no change."""
    for name in ("agent-api", "agent-worker"):
        deployment = stacks[stack].named(name, "kubernetes:apps/v1:Deployment")
        assert "replicas" not in deployment.inputs["spec"]
        assert deployment.ignore_changes == ("spec.replicas",)


# --- the upgrade itself: released fixed names become auto-named ones ------------------------

RELEASED_NAMES = {  # logical name -> the fixed metadata.name the previous release gave it
    "agent-config": "agent-service-config", "agent-secrets": "agent-service-secrets",
    "agent-migrate": "agent-service-migrate-0123456789", "data-postgres": "postgres",
    "data-valkey": "valkey", "monitoring-grafana-admin": "grafana-admin",
    "monitoring-alertmanager-config": "alertmanager-agent-platform",
    "tracing-jaeger-config": "jaeger-config",
}


def as_released(current: Rendered) -> Rendered:
    """The state the previous release left: the same objects under their fixed names, and every
    reference to them (envFrom, chart values) spelling those names."""
    renames = {r.k8s_name: RELEASED_NAMES[r.name] for r in current.resources
               if r.autonamed and r.name in RELEASED_NAMES}
    resources = []
    for resource in current.resources:
        text = json.dumps(resource.inputs)
        for new, old in renames.items():
            text = text.replace(f'"{new}"', f'"{old}"')
        inputs = json.loads(text)
        annotations = (inputs.get("metadata") or {}).get("annotations") or {}
        annotations.pop("pulumi.com/autonamed", None)
        resources.append(dataclasses.replace(resource, inputs=inputs))
    assert set(renames.values()) == {
        RELEASED_NAMES[r.name] for r in current.resources if r.name in RELEASED_NAMES
        and r.autonamed}
    return Rendered(current.stack, resources)


@pytest.mark.parametrize("stack", STACKS)
def test_upgrading_from_fixed_names_rolls_once_and_deletes_nothing_first(
        stacks: dict[str, Rendered], stack: str) -> None:
    current = stacks[stack]
    steps = plan(as_released(current), current)
    renamed = {f"{s.resource.type.rsplit(':', 1)[-1]}/{s.resource.name}" for s in steps.values()
               if s.op == "replace"}
    expected = {"ConfigMap/agent-config", "Secret/agent-secrets", "Job/agent-migrate",
                "Secret/monitoring-grafana-admin", "Secret/monitoring-alertmanager-config"}
    if stack == "local":
        expected |= {"Secret/data-postgres", "Secret/data-valkey"}
    if stack == "prod":
        expected |= {"ConfigMap/tracing-jaeger-config"}
    assert renamed == expected
    # Each new object is created before its old one is deleted; what reads them is updated.
    assert not [s for s in steps.values() if s.delete_before_replace]
    assert_no_outage(steps)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_service_role_is_associated_and_rolls_the_pods(stacks: dict[str, Rendered],
                                                        stack: str) -> None:
    """Pod Identity gives a pod its role when the pod starts: the association is created, and
    the role on the pod templates rolls the Deployments (and, with them, a new migration Job)
    in place; the service account itself is untouched."""
    role = {"serviceAccountRoleArn": "arn:aws:iam::123456789012:role/agent"}
    steps = plan(stacks[stack], render(stack, role))
    assert summary(steps) == released(stack, {
        "create": {"PodIdentityAssociation/addons-service-pod-identity",
                   "NetworkPolicy/agent-network-pod-identity-egress"},
        "replace": {"Job/agent-migrate"}, "update": WORKLOADS})
    assert_no_outage(steps)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_kubernetes_upgrade_updates_control_plane_add_ons_and_nodes_in_place(
        stacks: dict[str, Rendered], stack: str) -> None:
    """One minor up: the control plane, every add-on (at the build EKS names for the new
    minor), the node group (rolling, 33 % at a time) and the autoscaler's image move in one
    `pulumi up`, each updated in place, in that order."""
    before = render(stack, {"kubernetesVersion": "1.34"})
    steps = plan(before, stacks[stack])
    updated = {step.resource.type.rsplit(":", 1)[-1] + "/" + step.resource.name: step
               for step in steps.values()}
    assert {step.op for step in updated.values()} == {"update"}
    assert set(updated) == {
        "Cluster/cluster-eks", "NodeGroup/cluster-nodes", "Addon/cluster-vpc-cni",
        "Addon/cluster-kube-proxy", "Addon/cluster-coredns", "Addon/cluster-aws-ebs-csi-driver",
        "Addon/cluster-eks-pod-identity-agent", "Release/addons-cluster-autoscaler"}
    assert_no_outage(steps)
    assert updated["NodeGroup/cluster-nodes"].resource.inputs["version"] == "1.35"
    assert updated["Release/addons-cluster-autoscaler"].resource.inputs["values"]["image"] == {
        "tag": "v1.35.1"}
    # Order: the network add-ons wait for the control plane, the nodes for them.
    by_name = {s.resource.name: s.resource for s in steps.values()}
    cluster = by_name["cluster-eks"].urn
    assert cluster in by_name["cluster-vpc-cni"].dependency_urns
    nodes = by_name["cluster-nodes"]
    assert {by_name["cluster-vpc-cni"].urn, by_name["cluster-kube-proxy"].urn} <= set(
        nodes.dependency_urns)


def test_smaller_node_disks_update_the_launch_template_in_place(
        stacks: dict[str, Rendered]) -> None:
    """dev's 30 GiB roots (Pulumi.dev.yaml) on a dev stack made with 50: the launch template gets
    a new version in place; the node group names the template's latest version, so EKS then
    rolls the nodes 33 % at a time (the mocks keep the version number, so the plan shows the
    template alone). Nothing is replaced or deleted."""
    steps = plan(render("dev", {"nodeDiskSizeGb": 50}), stacks["dev"])
    assert summary(steps) == {"update": {"LaunchTemplate/cluster-nodes"}}
    template = stacks["dev"].named("cluster-nodes", "aws:ec2/launchTemplate:LaunchTemplate")
    assert template.inputs["blockDeviceMappings"][0]["ebs"]["volumeSize"] == 30
    group = stacks["dev"].one("aws:eks/nodeGroup:NodeGroup").inputs
    assert group["launchTemplate"]["id"] == f"{template.name}-id"
    assert group["updateConfig"] == {"maxUnavailablePercentage": 33}
