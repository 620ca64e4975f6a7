"""The policy pack, rule by rule: quiet on every stack we ship, loud on a bad resource."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from typing import Any

import pytest
import yaml
from pulumi_policy import ResourceValidationPolicy, StackValidationPolicy
from pulumi_policy.proxy import (
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
)

from harness import ROOT, STACKS, Rendered, Resource
from policy_runner import ALL_POLICIES, check, evaluate, pack_config, policy_config
from policy_runner import main as policy_main

POLICIES = {policy.name: policy for policy in ALL_POLICIES}
HARDENED_CONTAINER: dict[str, Any] = {
    "name": "app", "image": "registry.example/app@sha256:" + "a" * 64,
    "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]}},
    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    "livenessProbe": {"httpGet": {"path": "/health", "port": 8000}},
    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8000}},
}
LABELS = {"app.kubernetes.io/name": "agent", "app.kubernetes.io/part-of": "agent-platform",
          "app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/component": "api"}


def deployment(container: dict[str, Any] | None = None, pod: dict[str, Any] | None = None,
               replicas: int = 2, name: str = "api", labels: dict[str, str] | None = None,
               namespace: str = "agent") -> Resource:
    pod_spec = {"securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{**HARDENED_CONTAINER, **(container or {})}], **(pod or {})}
    labels = LABELS if labels is None else labels
    return Resource("kubernetes:apps/v1:Deployment", name, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": pod_spec}}})


def k8s(kind: str, name: str, spec: dict[str, Any], namespace: str = "agent",
        api: str = "v1", **extra: Any) -> Resource:
    group = {"NetworkPolicy": "networking.k8s.io/v1", "PodDisruptionBudget": "policy/v1",
             "HorizontalPodAutoscaler": "autoscaling/v2"}.get(kind, api)
    token = f"kubernetes:{group if '/' in group else 'core/' + group}:{kind}"
    return Resource(token, name, {"kind": kind, "metadata": {"name": name,
                                                            "namespace": namespace},
                                  "spec": spec, **extra})


def violations(policy: str, *resources: Resource, **settings: Any) -> list[str]:
    _, defaults = policy_config(POLICIES[policy], {})
    found, unknown = check(POLICIES[policy], list(resources), {**defaults, **settings})
    assert not unknown
    return [v.message for v in found]


def test_rules_are_named_described_and_explained() -> None:
    assert len(POLICIES) == len(ALL_POLICIES), "rule names must be unique"
    for policy in ALL_POLICIES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", policy.name), policy.name
        assert policy.description and policy.severity is not None, policy.name
        assert policy.remediation_steps, policy.name


def test_pack_files_are_what_the_cli_expects() -> None:
    manifest = yaml.safe_load((ROOT / "policies" / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    main = ast.parse((ROOT / "policies" / "__main__.py").read_text())
    calls = [n.func.id for n in ast.walk(main) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Name)]
    assert calls == ["PolicyPack"]
    requirements = (ROOT / "policies" / "requirements.txt").read_text()
    assert re.search(r"^pulumi-policy==", requirements, re.MULTILINE)


@pytest.mark.parametrize("stack", STACKS)
def test_pack_config_names_real_rules_and_settings(stack: str) -> None:
    config = pack_config(stack)
    for name, entry in config.items():
        if name == "all":
            assert entry in ("advisory", "mandatory", "disabled")
            continue
        policy = POLICIES[name]
        if isinstance(entry, dict):
            assert policy.config_schema is not None, name
            assert set(entry) - {"enforcementLevel"} <= set(policy.config_schema.properties)


def test_prod_is_mandatory_and_other_stacks_advisory() -> None:
    for policy in ALL_POLICIES:
        assert policy_config(policy, pack_config("prod"))[0] == "mandatory"
        assert policy_config(policy, pack_config("dev"))[0] == "advisory"
        assert policy_config(policy, pack_config("local"))[0] == "advisory"
        assert policy_config(policy, {})[0] == "mandatory", "secure by default"


EXPECTED_ON_SHIPPED_STACKS = {
    "local": set(),
    # dev deliberately opens the EKS endpoint for CI runners; the advisory rule says so.
    "dev": {"eks-endpoint-restricted"},
    "prod": set(),
}


@pytest.mark.parametrize("stack", STACKS)
def test_shipped_stacks_pass_every_rule(stacks: dict[str, Rendered], stack: str) -> None:
    outcome = evaluate(stacks[stack])
    failing = {name for name, found in outcome.violations.items() if found}
    assert failing == EXPECTED_ON_SHIPPED_STACKS[stack], outcome.violations
    assert not outcome.unknown


def _unknown_like(value: Any) -> Any:
    if isinstance(value, bool):
        return UNKNOWN_BOOLEAN_VALUE
    if isinstance(value, int | float):
        return UNKNOWN_NUMBER_VALUE
    if isinstance(value, list):
        return UNKNOWN_ARRAY_VALUE
    if isinstance(value, dict):
        return UNKNOWN_OBJECT_VALUE
    return UNKNOWN_STRING_VALUE


@pytest.mark.parametrize("stack", STACKS)
def test_rules_survive_values_unknown_during_preview(stacks: dict[str, Rendered],
                                                     stack: str) -> None:
    # Every top-level input of every resource unknown, as in a first preview.
    unknown = [Resource(r.type, r.name, {k: _unknown_like(v) for k, v in r.inputs.items()})
               for r in stacks[stack].resources]
    for policy in ALL_POLICIES:
        _, settings = policy_config(policy, pack_config(stack))
        check(policy, unknown, settings)  # raises on anything but UnknownValueError


def test_an_unknown_value_is_reported_not_crashed_on() -> None:
    cluster = Resource("aws:eks/cluster:Cluster", "eks",
                       {"vpcConfig": UNKNOWN_OBJECT_VALUE, "tags": {}})
    found, unknown = check(POLICIES["eks-endpoint-restricted"], [cluster], {})
    assert not found
    assert unknown and "can't be known during preview" in unknown[0]


RDS_GOOD = {"storageEncrypted": True, "publiclyAccessible": False, "backupRetentionPeriod": 14,
            "multiAz": True, "deletionProtection": True, "skipFinalSnapshot": False}


@pytest.mark.parametrize(("policy", "resource", "expected"), [
    ("rds-storage-encrypted",
     Resource("aws:rds/instance:Instance", "db", {**RDS_GOOD, "storageEncrypted": False}),
     "RDS storage is not encrypted: set storage_encrypted=True"),
    ("rds-not-publicly-accessible",
     Resource("aws:rds/instance:Instance", "db", {**RDS_GOOD, "publiclyAccessible": True}),
     "The RDS instance is publicly accessible: set publicly_accessible=False"),
    ("rds-backup-retention",
     Resource("aws:rds/instance:Instance", "db", {**RDS_GOOD, "backupRetentionPeriod": 3}),
     "Backups are kept 3 days; this stack requires at least 14: raise dbBackupRetentionDays."),
    ("rds-multi-az", Resource("aws:rds/instance:Instance", "db", {**RDS_GOOD, "multiAz": False}),
     "The database has no standby in a second zone: set dbMultiAz to true."),
    ("rds-deletion-protection",
     Resource("aws:rds/instance:Instance", "db", {**RDS_GOOD, "deletionProtection": False}),
     "Deletion protection is off: set dbDeletionProtection to true."),
    ("rds-deletion-protection",
     Resource("aws:rds/instance:Instance", "db", {**RDS_GOOD, "skipFinalSnapshot": True}),
     "No final snapshot would be taken on deletion: set dbFinalSnapshot to true."),
    ("rds-force-ssl",
     Resource("aws:rds/parameterGroup:ParameterGroup", "pg",
              {"family": "postgres17", "parameters": [{"name": "rds.force_ssl", "value": "0"}]}),
     "The parameter group lets clients connect without TLS: set rds.force_ssl=1."),
    ("elasticache-encrypted-and-authenticated",
     Resource("aws:elasticache/replicationGroup:ReplicationGroup", "cache",
              {"transitEncryptionEnabled": False, "atRestEncryptionEnabled": True,
               "authToken": "x" * 32}),
     "ElastiCache lacks transitEncryptionEnabled: enable TLS in transit"),
    ("elasticache-encrypted-and-authenticated",
     Resource("aws:elasticache/replicationGroup:ReplicationGroup", "cache",
              {"transitEncryptionEnabled": True, "atRestEncryptionEnabled": True}),
     "ElastiCache has no AUTH token: set auth_token"),
    ("eks-endpoint-restricted",
     Resource("aws:eks/cluster:Cluster", "eks", {"vpcConfig": {"endpointPublicAccess": True}}),
     "The EKS API endpoint is public to the whole internet"),
    ("eks-secrets-encryption", Resource("aws:eks/cluster:Cluster", "eks", {}),
     "Kubernetes Secrets are not envelope-encrypted"),
    ("eks-control-plane-logging",
     Resource("aws:eks/cluster:Cluster", "eks", {"enabledClusterLogTypes": ["api"]}),
     "Control-plane logs audit, authenticator are off: add them to clusterLogTypes."),
    ("ecr-scan-on-push", Resource("aws:ecr/repository:Repository", "repo", {}),
     "Images are not scanned on push"),
    ("ecr-immutable-tags",
     Resource("aws:ecr/repository:Repository", "repo", {"imageTagMutability": "MUTABLE"}),
     "Image tags can be overwritten"),
    ("security-group-open-ingress",
     Resource("aws:ec2/securityGroup:SecurityGroup", "sg", {"ingress": [
         {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}]}),
     "Ports 22-22 are open to the internet: only 80 and 443 of the load balancer may be"),
    ("security-group-open-ingress",
     Resource("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "rule",
              {"fromPort": 0, "toPort": 65535, "cidrIpv6": "::/0"}),
     "Ports 0-65535 are open to the internet"),
    ("kms-key-rotation", Resource("aws:kms/key:Key", "key", {"enableKeyRotation": False}),
     "The KMS key is not rotated"),
    ("required-tags", Resource("aws:ec2/vpc:Vpc", "vpc", {"tags": {"Project": "x"}}),
     "Missing tags Stack, Environment, Owner, CostCenter, ManagedBy"),
    ("k8s-run-as-non-root", deployment(pod={"securityContext": {}}),
     "Deployment api: container 'app' may run as root"),
    ("k8s-run-as-non-root",
     deployment(container={"securityContext": {**HARDENED_CONTAINER["securityContext"],
                                               "runAsUser": 0}}),
     "Deployment api: container 'app' may run as root"),
    ("k8s-no-privilege-escalation",
     deployment(container={"securityContext": {"readOnlyRootFilesystem": True,
                                               "capabilities": {"drop": ["ALL"]}}}),
     "Deployment api: container 'app' can escalate privileges"),
    ("k8s-read-only-root-filesystem",
     deployment(container={"securityContext": {"allowPrivilegeEscalation": False,
                                               "capabilities": {"drop": ["ALL"]}}}),
     "Deployment api: container 'app' has a writable root filesystem"),
    ("k8s-drop-all-capabilities",
     deployment(container={"securityContext": {**HARDENED_CONTAINER["securityContext"],
                                               "capabilities": {"add": ["NET_ADMIN"],
                                                                "drop": ["ALL"]}}}),
     "Deployment api: container 'app' keeps Linux capabilities"),
    ("k8s-seccomp-runtime-default",
     deployment(pod={"securityContext": {"runAsNonRoot": True, "runAsUser": 1}}),
     "Deployment api: container 'app' runs without a seccomp profile"),
    ("k8s-resources-set", deployment(container={"resources": {"requests": {"cpu": "1"}}}),
     "Deployment api: container 'app' lacks requests.memory, limits.memory"),
    ("k8s-probes-set", deployment(container={"readinessProbe": None}),
     "Deployment api: container 'app' has no readinessProbe"),
    ("k8s-image-pinned", deployment(container={"image": "ghcr.io/acme/agent:latest"}),
     "Deployment api: container 'app' image 'ghcr.io/acme/agent:latest' is not pinned"),
    ("k8s-image-pinned", deployment(container={"image": "localhost:5001/agent"}),
     "image 'localhost:5001/agent' is not pinned"),
    ("k8s-no-load-balancer-services", k8s("Service", "api", {"type": "LoadBalancer"}),
     "Services of type LoadBalancer open a load balancer outside the Ingress"),
    ("k8s-no-host-access", deployment(pod={"hostNetwork": True}),
     "Deployment api: hostNetwork shares the node's namespaces"),
    ("k8s-no-host-access",
     deployment(pod={"volumes": [{"name": "docker", "hostPath": {"path": "/var/run"}}]}),
     "Deployment api: volume 'docker' mounts a host path"),
    ("k8s-no-host-access",
     deployment(container={"ports": [{"containerPort": 80, "hostPort": 80}]}),
     "Deployment api: container 'app' binds a host port"),
    ("k8s-no-secrets-in-configmaps",
     k8s("ConfigMap", "settings", {}, data={"DATABASE_URL": "postgresql://agent:hunter2@db/x"}),
     "ConfigMap key 'DATABASE_URL' looks like a credential: move it to a Secret"),
    ("k8s-no-secrets-in-configmaps",
     k8s("ConfigMap", "settings", {}, data={"OPENAI_API_KEY": "x"}),
     "ConfigMap key 'OPENAI_API_KEY' looks like a credential"),
    ("k8s-recommended-labels", deployment(labels={}),
     "Deployment api lacks the labels app.kubernetes.io/name, app.kubernetes.io/part-of"),
])
def test_each_rule_fires_on_a_bad_resource(policy: str, resource: Resource,
                                           expected: str) -> None:
    messages = violations(policy, resource)
    assert any(expected in m for m in messages), messages


@pytest.mark.parametrize("policy", [p.name for p in ALL_POLICIES
                                    if isinstance(p, ResourceValidationPolicy)
                                    and p.name.startswith("k8s-")])
def test_kubernetes_rules_accept_a_hardened_deployment(policy: str) -> None:
    assert violations(policy, deployment()) == []


def test_config_map_without_credentials_passes() -> None:
    settings = k8s("ConfigMap", "settings", {}, data={"LOG_LEVEL": "info",
                                                      "REDIS_HOST": "valkey.agent-data"})
    assert violations("k8s-no-secrets-in-configmaps", settings) == []


def test_dev_retention_setting_relaxes_the_backup_rule() -> None:
    db = Resource("aws:rds/instance:Instance", "db", {**RDS_GOOD, "backupRetentionPeriod": 7})
    assert violations("rds-backup-retention", db, minimumDays=7) == []
    assert violations("rds-backup-retention", db)  # the default is prod's 14


def default_deny(namespace: str = "agent") -> Resource:
    return k8s("NetworkPolicy", "default-deny", {"podSelector": {},
                                                 "policyTypes": ["Ingress", "Egress"]},
               namespace=namespace)


def pdb(labels: dict[str, str] = LABELS) -> Resource:
    return k8s("PodDisruptionBudget", "api", {"maxUnavailable": 1,
                                              "selector": {"matchLabels": labels}})


def hpa(minimum: int = 2, name: str = "api") -> Resource:
    return k8s("HorizontalPodAutoscaler", name, {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": minimum, "maxReplicas": 10})


ZONE_SPREAD = {"topologySpreadConstraints": [{
    "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
    "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": LABELS}}]}


def rollout(steps: list[dict[str, Any]] | None = None, name: str = "api") -> Resource:
    """An Argo Rollout releasing the Deployment `name` (workloadRef) as a judged canary."""
    analysis = {"analysis": {"templates": [{"templateName": "api-canary"}]}}
    return Resource("kubernetes:argoproj.io/v1alpha1:Rollout", name, {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name, "namespace": "agent", "labels": LABELS},
        "spec": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                 "strategy": {"canary": {"steps": [{"setWeight": 10}, analysis]
                                         if steps is None else steps}}}})


def rollout_hpa(minimum: int = 2, name: str = "api") -> Resource:
    return k8s("HorizontalPodAutoscaler", name, {
        "scaleTargetRef": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                           "name": name},
        "minReplicas": minimum, "maxReplicas": 10})


def test_stack_rules_accept_a_well_formed_service() -> None:
    # The autoscaler scales the Rollout that runs the Deployment's pods: it counts for both.
    resources = [deployment(pod=ZONE_SPREAD), pdb(), rollout(), rollout_hpa(), default_deny()]
    for policy in ALL_POLICIES:
        if isinstance(policy, StackValidationPolicy):
            assert violations(policy.name, *resources) == [], policy.name


@pytest.mark.parametrize(("resources", "expected"), [
    ([deployment(pod=ZONE_SPREAD), hpa()],
     "Deployment agent/api serves traffic but a new version replaces all of its pods unjudged"),
    ([deployment(pod=ZONE_SPREAD), rollout(steps=[{"setWeight": 50}, {"pause": {}}])],
     "Deployment agent/api serves traffic but a new version replaces all of its pods unjudged"),
    ([deployment(pod=ZONE_SPREAD), rollout(name="other")],
     "Deployment agent/api serves traffic but a new version replaces all of its pods unjudged"),
])
def test_serving_workloads_must_release_through_a_judged_rollout(
        resources: list[Resource], expected: str) -> None:
    found = violations("serving-workloads-release-progressively", *resources)
    assert any(expected in m for m in found), found
    assert violations("serving-workloads-release-progressively", *resources,
                      required=False) == []


def test_an_autoscaler_of_another_rollout_does_not_count() -> None:
    found = violations("api-has-autoscaler", deployment(), rollout(name="other"),
                       rollout_hpa(name="other"))
    assert found and "has no HorizontalPodAutoscaler" in found[0]


@pytest.mark.parametrize(("policy", "resources", "expected"), [
    ("replicated-workloads-have-pdb", [deployment(), default_deny()],
     "Deployment agent/api runs several replicas but no PodDisruptionBudget selects its pods"),
    ("replicated-workloads-have-pdb",
     [deployment(), pdb(labels={"app.kubernetes.io/name": "other"})],
     "Deployment agent/api runs several replicas but no PodDisruptionBudget"),
    ("replicated-workloads-have-pdb", [deployment(), pdb(labels={})],
     "Deployment agent/api runs several replicas but no PodDisruptionBudget"),
    ("namespaces-default-deny", [deployment(), default_deny(namespace="elsewhere")],
     "Namespace 'agent' runs Deployment api but has no default-deny NetworkPolicy"),
    ("api-has-autoscaler", [deployment(), pdb()],
     "API Deployment agent/api has no HorizontalPodAutoscaler"),
    ("serving-workloads-highly-available", [deployment(pod=ZONE_SPREAD), hpa(minimum=1)],
     "Deployment agent/api may run 1 replica(s); this stack needs at least 2"),
    ("serving-workloads-highly-available", [deployment(), hpa()],
     "Deployment agent/api is not spread over zones"),
    ("eks-version-in-standard-support",
     [Resource("aws:eks/cluster:Cluster", "eks", {"version": "1.31"})],
     "Kubernetes 1.31 left EKS standard support on 2025-11-26"),
    ("eks-version-in-standard-support",
     [Resource("aws:eks/cluster:Cluster", "eks", {"version": "1.29"})],
     "Kubernetes 1.29 is not in the EKS support calendar"),
])
def test_each_stack_rule_fires(policy: str, resources: list[Resource], expected: str) -> None:
    messages = violations(policy, *resources)
    assert any(expected in m for m in messages), messages


def prometheus_release(selector: dict[str, Any] | None) -> Resource:
    spec = {} if selector is None else {"serviceMonitorSelector": selector}
    return Resource("kubernetes:helm.sh/v3:Release", "monitoring", {
        "chart": "kube-prometheus-stack", "name": "kube-prometheus-stack",
        "values": {"prometheus": {"prometheusSpec": spec}}})


def service_monitor(labels: dict[str, str]) -> Resource:
    return Resource("kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "api-monitor", {
        "kind": "ServiceMonitor", "metadata": {"name": "api", "namespace": "agent",
                                               "labels": labels},
        "spec": {"selector": {"matchLabels": LABELS}, "endpoints": [{"port": "http"}]}})


@pytest.mark.parametrize(("selector", "labels", "selected"), [
    ({"matchLabels": {"team": "agents"}}, {"team": "agents"}, True),
    ({"matchLabels": {"team": "agents"}}, {"release": "kube-prometheus-stack"}, False),
    # The chart's default selector is its own release label.
    (None, {"release": "kube-prometheus-stack"}, True),
    (None, {"app": "api"}, False),
    ({}, {}, True),
])
def test_monitors_must_match_the_prometheus_selector(selector: dict[str, Any] | None,
                                                     labels: dict[str, str],
                                                     selected: bool) -> None:
    found = violations("monitors-are-selected", prometheus_release(selector),
                       service_monitor(labels))
    assert (found == []) is selected, found
    if not selected:
        assert "Prometheus would silently ignore it" in found[0]


def test_single_replica_needs_no_pdb() -> None:
    assert violations("replicated-workloads-have-pdb", deployment(replicas=1)) == []


def test_ha_rule_can_be_relaxed_per_stack() -> None:
    single = [deployment(replicas=1)]
    assert violations("serving-workloads-highly-available", *single, required=False) == []


def test_a_mandatory_violation_fails_the_offline_run(stacks: dict[str, Rendered]) -> None:
    prod = stacks["prod"]
    tampered = Rendered("prod", [*prod.resources, Resource(
        "aws:ec2/securityGroup:SecurityGroup", "ssh", {"tags": {}, "ingress": [
            {"fromPort": 22, "toPort": 22, "protocol": "tcp", "cidrBlocks": ["0.0.0.0/0"]}]})])
    outcome = evaluate(tampered)
    assert outcome.enforcement["security-group-open-ingress"] == "mandatory"
    assert [v.urn for v in outcome.violations["security-group-open-ingress"]] == [
        "urn:pulumi:test::agent-platform::aws:ec2/securityGroup:SecurityGroup::ssh"]
    assert json.dumps(outcome.enforcement)  # serialisable for reports


def config_map(name: str, autonamed: bool) -> Resource:
    metadata: dict[str, Any] = {"name": name, "namespace": "agent"}
    if autonamed:
        metadata["annotations"] = {"pulumi.com/autonamed": "true"}
    return Resource("kubernetes:core/v1:ConfigMap", "config", {
        "kind": "ConfigMap", "metadata": metadata, "data": {"LOG_LEVEL": "INFO"}})


def depending(workload: Resource, *dependencies: Resource) -> Resource:
    return dataclasses.replace(workload, dependency_urns=tuple(d.urn for d in dependencies))


@pytest.mark.parametrize(("autonamed", "expected"), [
    (False, ["Deployment api depends on ConfigMap 'app-config', which has a fixed metadata.name: "
             "whenever its content changes pulumi-kubernetes replaces it delete-before-replace, "
             "and the engine deletes and recreates api with it (an outage). Leave metadata.name "
             "unset so it is auto-named (create-before-delete) and reference it by its output "
             "name."]),
    (True, []),
])
def test_workloads_must_not_depend_on_fixed_name_config(autonamed: bool,
                                                        expected: list[str]) -> None:
    config = config_map("app-config", autonamed)
    assert violations("k8s-workload-dependencies-replace-safely",
                      config, depending(deployment(), config)) == expected


def test_a_fixed_name_config_nothing_depends_on_is_fine() -> None:
    # A dashboard ConfigMap found by label: its replacement touches nothing else.
    assert violations("k8s-workload-dependencies-replace-safely",
                      config_map("dashboard", autonamed=False), deployment()) == []


def test_helm_releases_count_as_dependents() -> None:
    secret = Resource("kubernetes:core/v1:Secret", "alertmanager", {
        "kind": "Secret", "metadata": {"name": "alertmanager", "namespace": "monitoring"}})
    release = depending(Resource("kubernetes:helm.sh/v3:Release", "monitoring",
                                 {"chart": "kube-prometheus-stack"}), secret)
    (message,) = violations("k8s-workload-dependencies-replace-safely", secret, release)
    assert message.startswith("Release monitoring depends on Secret 'alertmanager'")


def test_rules_with_nothing_to_check_are_not_applicable(stacks: dict[str, Rendered]) -> None:
    local = evaluate(stacks["local"])
    aws_rules = {policy.name for policy in ALL_POLICIES if policy.name.startswith(
        ("rds-", "elasticache-", "eks-", "ecr-", "security-group-", "kms-", "required-tags"))}
    assert aws_rules <= local.not_applicable
    assert "k8s-run-as-non-root" not in local.not_applicable
    assert not aws_rules & evaluate(stacks["prod"]).not_applicable


def test_a_program_warning_is_kept_once_per_render_and_reported_per_stack(
        stacks: dict[str, Rendered], capsys: pytest.CaptureFixture[str]) -> None:
    for rendered in stacks.values():
        receivers = [w for w in rendered.warnings if "no alert receiver" in w]
        assert receivers == ["no alert receiver is configured (alertSlackWebhookUrl, "
                             "alertPagerdutyRoutingKey or alertEmailTo): alerts are only "
                             "visible in Alertmanager and Grafana"]
    policy_main()
    report = capsys.readouterr().out
    for stack in STACKS:
        assert report.count(f"[{stack}] warning: no alert receiver") == 1
