"""Canary releases (`progressiveDelivery: canary`): the Argo Rollouts controller, the Rollouts,
their analyses and the release gate, checked against the pinned release's own CRDs and RBAC, and
the plans `pulumi preview` shows when a running stack turns canaries on, releases, and turns them
off."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml
from crd_validation import crd_validator
from plan import plan, summary

from components.kubernetes.rollouts_controller import (
    CLUSTER_RULES,
    CRD_DIRECTORY,
    ROLLOUTS_IMAGE,
    ROLLOUTS_VERSION,
)
from components.kubernetes.service.release_gate import ROLLOUTS_CLI_IMAGE, release_minutes
from harness import ROOT, Rendered, Resource, render

ROLLOUT = "kubernetes:argoproj.io/v1alpha1:Rollout"
TEMPLATE = "kubernetes:argoproj.io/v1alpha1:AnalysisTemplate"
JOB = "kubernetes:batch/v1:Job"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
UPSTREAM_ROLE = ROOT / "tests" / "crd_schemas" / "argo-rollouts" / ROLLOUTS_VERSION / \
    "argo-rollouts-clusterrole.yaml"
DOMAIN = {"domainName": "agents.example.com", "hostedZoneId": "Z0123456789ABCDEFGHIJ"}


@pytest.fixture(scope="module")
def prod() -> Rendered:
    return render("prod", DOMAIN)


def crd_schema(file: str) -> jsonschema.Draft7Validator:
    return crd_validator([CRD_DIRECTORY / file], "v1alpha1")


def body(resource: Resource) -> dict[str, Any]:
    return {k: resource.inputs[k] for k in ("apiVersion", "kind", "metadata", "spec")}


def test_the_vendored_crds_are_the_pinned_release() -> None:
    assert [p.name for p in CRD_DIRECTORY.parent.iterdir()] == [ROLLOUTS_VERSION]
    assert UPSTREAM_ROLE.is_file()
    assert ROLLOUTS_IMAGE.endswith(f":{ROLLOUTS_VERSION}")
    assert ROLLOUTS_CLI_IMAGE.endswith(f":{ROLLOUTS_VERSION}")
    kinds = {yaml.safe_load(p.read_text())["spec"]["names"]["kind"]
             for p in CRD_DIRECTORY.glob("*.yaml")}
    # The controller informs on all five; a missing one stops it starting.
    assert kinds == {"Rollout", "AnalysisRun", "AnalysisTemplate", "ClusterAnalysisTemplate",
                     "Experiment"}


@pytest.mark.parametrize(("type_", "file"), [(ROLLOUT, "rollout-crd.yaml"),
                                             (TEMPLATE, "analysis-template-crd.yaml")])
def test_rollouts_and_templates_are_valid_for_the_pinned_release(
        prod: Rendered, type_: str, file: str) -> None:
    validator = crd_schema(file)
    objects = prod.of_type(type_)
    assert len(objects) == 2
    for obj in objects:
        assert [e.message for e in validator.iter_errors(body(obj))] == [], obj.name
    broken = body(objects[0])
    field = "revisionHistoryLimit" if type_ == ROLLOUT else "metrics"
    broken["spec"] = {**broken["spec"], field: "five"}
    assert list(validator.iter_errors(broken))


def test_the_controller_asks_for_nothing_its_release_does_not() -> None:
    upstream = {(group, resource, verb)
                for rule in yaml.safe_load(UPSTREAM_ROLE.read_text())["rules"]
                for group in rule["apiGroups"] for resource in rule["resources"]
                for verb in rule["verbs"]}
    granted = {(group, resource, verb) for groups, resources, verbs in CLUSTER_RULES
               for group in groups for resource in resources for verb in verbs}
    assert granted <= upstream, sorted(granted - upstream)
    # What we leave out on purpose: every Secret of the cluster, other traffic routers.
    assert ("", "secrets", "list") in upstream - granted
    assert not {g for g, _, _ in granted} & {"networking.istio.io", "split.smi-spec.io",
                                              "getambassador.io", "traefik.containo.us"}


def test_the_controller_is_hardened_and_isolated(prod: Rendered) -> None:
    controller = prod.named("rollouts-controller", "kubernetes:apps/v1:Deployment").inputs
    pod = controller["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == ROLLOUTS_IMAGE
    assert container["securityContext"] == {
        "runAsNonRoot": True, "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert controller["spec"]["replicas"] == 2
    namespace = prod.named("rollouts-namespace").inputs["metadata"]["labels"]
    assert namespace["pod-security.kubernetes.io/enforce"] == "restricted"
    policies = {p.inputs["metadata"]["name"] for p in
                prod.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
                if p.inputs["metadata"]["namespace"] == "argo-rollouts"}
    assert policies == {"default-deny", "controller"}
    monitor = prod.named("monitoring-rollouts-monitor").inputs
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True


def test_the_api_and_workers_are_released_as_judged_canaries(prod: Rendered) -> None:
    rollouts = {r.inputs["metadata"]["name"]: r for r in prod.of_type(ROLLOUT)}
    api, worker = rollouts["agent-service-api"], rollouts["agent-service-worker"]
    for rollout, deployment, maximum in ((api, "agent-service-api", 12),
                                         (worker, "agent-service-worker", 10)):
        spec = rollout.inputs["spec"]
        assert spec["workloadRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                       "name": deployment, "scaleDown": "progressively"}
        # Starts at the autoscaler's maximum, then leaves the count to it.
        assert spec["replicas"] == maximum
        assert rollout.ignore_changes == ("spec.replicas",)
        assert rollout.protect
        steps = spec["strategy"]["canary"]["steps"]
        assert [s.get("setWeight") for s in steps[::2]] == [10, 50]
        assert all("analysis" in s for s in steps[1::2])
    canary = api.inputs["spec"]["strategy"]["canary"]
    assert canary["trafficRouting"] == {"alb": {
        "ingress": "agent-service-api", "rootService": "agent-service-api", "servicePort": 80}}
    assert (canary["stableService"], canary["canaryService"]) == (
        "agent-service-api-stable", "agent-service-api-canary")
    assert "trafficRouting" not in worker.inputs["spec"]["strategy"]["canary"]
    hpa = prod.named("agent-api", HPA).inputs["spec"]["scaleTargetRef"]
    assert (hpa["kind"], hpa["name"]) == ("Rollout", "agent-service-api")
    keda = prod.named("agent-worker", "kubernetes:keda.sh/v1alpha1:ScaledObject")
    assert keda.inputs["spec"]["scaleTargetRef"]["kind"] == "Rollout"


def test_the_ingress_follows_the_rollouts_action_and_never_writes_it(prod: Rendered) -> None:
    ingress = prod.named("agent-api", "kubernetes:networking.k8s.io/v1:Ingress")
    backend = ingress.inputs["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "agent-service-api", "port": {"name": "use-annotation"}}
    assert not [a for a in ingress.inputs["metadata"]["annotations"]
                if a.startswith("alb.ingress.kubernetes.io/actions.")]
    assert "agent-rollout-gate" in ingress.depends_on
    # Argo adds the pod-template hash to these selectors; the program never sets it.
    for track in ("stable", "canary"):
        service = prod.named(f"agent-api-{track}", "kubernetes:core/v1:Service").inputs
        assert "rollouts-pod-template-hash" not in service["spec"]["selector"]
        assert service["metadata"]["labels"]["app.kubernetes.io/component"] == f"api-{track}"


def test_the_release_gate_waits_for_both_rollouts(prod: Rendered) -> None:
    gate = prod.named("agent-rollout-gate", JOB)
    pod = gate.inputs["spec"]["template"]["spec"]
    minutes = release_minutes(2, 5)
    assert [c["args"] for c in pod["containers"]] == [
        ["status", f"agent-service-{c}", "--namespace", "agent-service", "--timeout",
         f"{minutes}m"] for c in ("api", "worker")]
    assert {c["image"] for c in pod["containers"]} == {ROLLOUTS_CLI_IMAGE}
    assert gate.inputs["spec"]["backoffLimit"] == 0
    assert {"agent-api", "agent-worker", "agent-api-rollout", "agent-worker-rollout"} <= set(
        gate.depends_on)
    role = prod.named("agent-rollout-gate", "kubernetes:rbac.authorization.k8s.io/v1:Role")
    verbs = {v for rule in role.inputs["rules"] for v in rule["verbs"]}
    assert verbs == {"get", "list", "watch"}


def test_turning_canaries_on_in_running_prod_adds_and_retargets_only(prod: Rendered) -> None:
    rolling = render("prod", {**DOMAIN, "progressiveDelivery": "off"})
    steps = plan(rolling, prod)
    ops = summary(steps)
    assert set(ops) == {"create", "update"}
    # The Deployments keep their pods until the Rollouts have theirs; the autoscalers move to
    # the Rollouts; the monitors start carrying each pod's release; the Ingress follows the
    # ALB action; the gate lets the NetworkPolicy reach the Kubernetes API.
    assert ops["update"] == {
        "HorizontalPodAutoscaler/agent-api", "ScaledObject/agent-worker",
        "ServiceMonitor/monitoring-api-monitor", "PodMonitor/monitoring-worker-monitor",
        "Ingress/agent-api"}
    assert ops["create"] >= {"Rollout/agent-api-rollout", "Rollout/agent-worker-rollout",
                             "AnalysisTemplate/agent-api-canary-analysis", "Job/agent-rollout-gate",
                             "NetworkPolicy/agent-network-kube-api-egress"}


def test_a_release_under_canaries_runs_the_gate_and_leaves_the_rollouts() -> None:
    def image(digit: str) -> Rendered:
        return render("prod", {**DOMAIN, "imageRef": "registry.example/agent@sha256:" + digit * 64})

    steps = plan(image("a"), image("b"))
    ops = summary(steps)
    assert ops.get("delete", set()) == set()
    assert ops["replace"] == {"Job/agent-migrate", "Job/agent-rollout-gate"}
    assert ops["update"] == {"Deployment/agent-api", "Deployment/agent-worker"}


def test_turning_canaries_off_is_refused_while_the_rollouts_run_the_pods(
        prod: Rendered) -> None:
    rolling = render("prod", {**DOMAIN, "progressiveDelivery": "off"})
    deleted = {s.resource.name: s.resource for s in plan(prod, rolling).values()
               if s.op == "delete"}
    assert {"agent-api-rollout", "agent-worker-rollout"} <= set(deleted)
    # Pulumi refuses to delete a protected resource: the preview fails before anything goes.
    assert deleted["agent-api-rollout"].protect and deleted["agent-worker-rollout"].protect


def test_local_stacks_release_with_rolling_updates_unless_asked() -> None:
    local = render("local")
    assert not local.of_type(ROLLOUT)
    canary = render("local", {"progressiveDelivery": "canary"})
    api = canary.named("agent-api-rollout").inputs["spec"]["strategy"]["canary"]
    # No traffic router: the canary's share is its share of the pods behind the one Service.
    assert "trafficRouting" not in api and "stableService" not in api
    assert canary.named("rollouts-controller", "kubernetes:apps/v1:Deployment").inputs[
        "spec"]["replicas"] == 1


def test_docs_name_every_delivery_key() -> None:
    text = (ROOT / "docs" / "delivery.md").read_text()
    for key in ("progressiveDelivery", "canarySteps", "canaryStepMinutes", "canaryMinRequests",
                "canaryMaxSpendRatio"):
        assert key in text, key


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"canarySteps": '["50", "10"]'},
     'agent-platform:canarySteps = ["50", "10"] is invalid: rising whole percentages between 1 '
     'and 99, e.g. ["10", "50"]'),
    ({"canarySteps": '["10", "100"]'}, "agent-platform:canarySteps"),
    ({"progressiveDelivery": "blue-green"},
     'agent-platform:progressiveDelivery = "blue-green" is invalid: allowed values are off, '
     "canary, bluegreen"),
    ({"canaryMaxSpendRatio": "0.5"},
     'agent-platform:canaryMaxSpendRatio = "0.5" is invalid: must be between 1 and 100'),
    ({"canaryStepMinutes": 0},
     "agent-platform:canaryStepMinutes = 0 is invalid: must be between 1 and 120"),
])
def test_bad_delivery_settings_are_named(overrides: dict[str, Any], expected: str) -> None:
    from test_config import config_error

    assert expected in config_error("prod", **overrides)


BLUE_GREEN = {**DOMAIN, "progressiveDelivery": "bluegreen"}


@pytest.fixture(scope="module")
def blue_green() -> Rendered:
    return render("prod", BLUE_GREEN)


def test_blue_green_previews_the_api_then_switches_and_judges_it(blue_green: Rendered) -> None:
    api = blue_green.named("agent-api-rollout").inputs["spec"]["strategy"]
    assert set(api) == {"blueGreen"}
    strategy = api["blueGreen"]
    assert (strategy["activeService"], strategy["previewService"]) == (
        "agent-service-api-active", "agent-service-api-preview")
    assert strategy["autoPromotionEnabled"] is True
    assert strategy["prePromotionAnalysis"]["templates"] == [
        {"templateName": "agent-service-api-preview"}]
    assert strategy["prePromotionAnalysis"]["args"] == [{
        "name": "preview-url",
        "value": "http://agent-service-api-preview.agent-service.svc.cluster.local/ready"}]
    assert strategy["postPromotionAnalysis"]["templates"] == [
        {"templateName": "agent-service-api-promoted"}]
    # The old version outlives the post-promotion analysis: a failure switches straight back.
    assert strategy["scaleDownDelaySeconds"] > 5 * 60
    # Workers have no traffic to switch: they stay canaries.
    assert "canary" in blue_green.named("agent-worker-rollout").inputs["spec"]["strategy"]
    ingress = blue_green.named("agent-api", "kubernetes:networking.k8s.io/v1:Ingress").inputs
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "agent-service-api-active", "port": {"name": "http"}}


def test_blue_green_templates_are_valid_and_probe_through_the_network_policies(
        blue_green: Rendered) -> None:
    templates = {t.inputs["metadata"]["name"]: t for t in blue_green.of_type(TEMPLATE)}
    assert set(templates) == {"agent-service-api-preview", "agent-service-api-promoted",
                              "agent-service-worker-canary"}
    validator = crd_schema("analysis-template-crd.yaml")
    for template in templates.values():
        assert [e.message for e in validator.iter_errors(body(template))] == []
    # And against @kubernetes-models/argo-rollouts, as every shipped stack's are.
    from test_kubernetes_schema import validate_custom

    custom = [body(r) for r in [*templates.values(), *blue_green.of_type(ROLLOUT)]]
    assert [r["error"] for r in validate_custom(custom)] == [None] * len(custom)
    (probe,) = templates["agent-service-api-preview"].inputs["spec"]["metrics"]
    assert probe["provider"]["web"]["jsonPath"] == "{$.status}"
    assert probe["successCondition"] == 'result == "ready"'
    (promoted,) = templates["agent-service-api-promoted"].inputs["spec"]["metrics"]
    assert promoted["name"] == "api-error-ratio"
    # The controller calls the preview: its egress and the API's ingress both admit it.
    policies = {(p.inputs["metadata"]["namespace"], p.inputs["metadata"]["name"]): p.inputs
                for p in blue_green.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    (api_in,) = policies[("agent-service", "api-ingress")]["spec"]["ingress"]
    assert {"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "argo-rollouts"}}} in api_in["from"]
    egress = policies[("argo-rollouts", "controller")]["spec"]["egress"]
    assert {"to": [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "agent-service"}}}],
            "ports": [{"protocol": "TCP", "port": 8000}]} in egress


def test_moving_from_canary_to_blue_green_keeps_every_pod(prod: Rendered,
                                                          blue_green: Rendered) -> None:
    steps = plan(prod, blue_green)
    ops = summary(steps)
    assert "Rollout/agent-api-rollout" in ops["update"]
    assert not {s for s in ops.get("delete", set()) if s.split("/")[0] in {
        "Rollout", "Deployment", "HorizontalPodAutoscaler", "Ingress"}}
    assert "replace" not in ops and "replace-delete-first" not in ops


def test_the_controller_verifies_the_alb_on_aws_only(prod: Rendered) -> None:
    args = prod.named("rollouts-controller", "kubernetes:apps/v1:Deployment").inputs[
        "spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["--leader-elect", "--aws-verify-target-group", "--aws-region=eu-west-1"]
    role = prod.named("addons-argo-rollouts-pod-identity", "aws:iam/role:Role")
    assert role is not None
    association = prod.named("addons-argo-rollouts-pod-identity",
                             "aws:eks/podIdentityAssociation:PodIdentityAssociation").inputs
    assert (association["namespace"], association["serviceAccount"]) == (
        "argo-rollouts", "argo-rollouts")
    local = render("local", {"progressiveDelivery": "canary"})
    assert local.named("rollouts-controller", "kubernetes:apps/v1:Deployment").inputs[
        "spec"]["template"]["spec"]["containers"][0]["args"] == ["--leader-elect"]
