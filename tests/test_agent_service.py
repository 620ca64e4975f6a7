"""The agent service's Kubernetes objects, as each stack renders them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from test_config import config_error

from components.config.settings import ConfigError
from components.kubernetes.service import API_GRACE_SECONDS, QUEUED_LIST
from components.kubernetes.service.network_policies import PRIVATE_RANGES
from harness import STACKS, Rendered, Resource

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SECRET = "kubernetes:core/v1:Secret"
NAMESPACE = "agent-service"


def named(rendered: Rendered, type_token: str, name: str) -> Mapping[str, Any]:
    found = [r.inputs for r in rendered.of_type(type_token)
             if r.inputs["metadata"]["name"] == name]
    assert len(found) == 1, f"{rendered.stack}: {type_token} {name}: {len(found)} found"
    return found[0]


def resource(rendered: Rendered, type_token: str, name: str) -> Resource:
    (found,) = [r for r in rendered.of_type(type_token) if r.inputs["metadata"]["name"] == name]
    return found


def pod(deployment: Mapping[str, Any]) -> Any:
    return deployment["spec"]["template"]["spec"]


def container(deployment: Mapping[str, Any]) -> Any:
    (only,) = pod(deployment)["containers"]
    return only


def service_policies(rendered: Rendered) -> dict[str, Mapping[str, Any]]:
    return {p.inputs["metadata"]["name"]: p.inputs["spec"] for p in rendered.of_type(POLICY)
            if p.inputs["metadata"]["namespace"] == NAMESPACE}


@pytest.mark.parametrize("stack", STACKS)
def test_namespace_is_restricted_and_may_reach_the_data_stores(stacks: dict[str, Rendered],
                                                               stack: str) -> None:
    labels = named(stacks[stack], "kubernetes:core/v1:Namespace", NAMESPACE)["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    assert labels["agent-platform/data-access"] == "true"


@pytest.mark.parametrize("stack", STACKS)
def test_pods_are_hardened(stacks: dict[str, Rendered], stack: str) -> None:
    rendered = stacks[stack]
    for name in ("agent-service-api", "agent-service-worker"):
        spec = pod(named(rendered, DEPLOYMENT, name))
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"] == {
            "runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"}}
        (main,) = spec["containers"]
        assert main["securityContext"] == {
            "runAsNonRoot": True, "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
        assert main["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
        assert spec["volumes"][0]["emptyDir"]["sizeLimit"]


def test_images_are_digest_pinned_on_aws(stacks: dict[str, Rendered]) -> None:
    prod = stacks["prod"]
    for name in ("agent-service-api", "agent-service-worker"):
        image = container(named(prod, DEPLOYMENT, name))["image"]
        assert image == prod.outputs["image_ref"]
        assert "@sha256:" in image


def test_api_rolls_out_without_losing_capacity(stacks: dict[str, Rendered]) -> None:
    api = named(stacks["prod"], DEPLOYMENT, "agent-service-api")
    # The autoscaler owns the replica count; a value here would reset it on every update.
    assert "replicas" not in api["spec"]
    assert api["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {
        "maxSurge": "25%", "maxUnavailable": 0}}
    main = container(api)
    assert main["args"] == ["api"]
    assert main["startupProbe"]["httpGet"]["path"] == "/health"
    assert main["livenessProbe"]["httpGet"]["path"] == "/health"
    assert main["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert main["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}
    assert pod(api)["terminationGracePeriodSeconds"] == API_GRACE_SECONDS > 5 + 25
    annotations = api["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "8000"


@pytest.mark.parametrize(("stack", "zone_mode"), [("prod", "DoNotSchedule"),
                                                  ("local", "ScheduleAnyway")])
def test_pods_spread_over_zones_and_nodes(stacks: dict[str, Rendered], stack: str,
                                          zone_mode: str) -> None:
    api = named(stacks[stack], DEPLOYMENT, "agent-service-api")
    constraints = {c["topologyKey"]: c for c in pod(api)["topologySpreadConstraints"]}
    assert constraints["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == zone_mode
    assert constraints["kubernetes.io/hostname"]["whenUnsatisfiable"] == "ScheduleAnyway"
    for constraint in constraints.values():
        assert constraint["labelSelector"]["matchLabels"] == \
            api["spec"]["selector"]["matchLabels"]
        assert constraint["matchLabelKeys"] == ["pod-template-hash"]


def test_resources_come_from_config(render_with: Any) -> None:
    rendered = render_with("dev", {"apiCpuRequest": "250m", "apiMemoryLimit": "3Gi",
                                   "workerCpuLimit": "1500m"})
    api = container(named(rendered, DEPLOYMENT, "agent-service-api"))["resources"]
    assert api == {"requests": {"cpu": "250m", "memory": "512Mi"},
                   "limits": {"cpu": "2", "memory": "3Gi"}}
    worker = container(named(rendered, DEPLOYMENT, "agent-service-worker"))["resources"]
    assert worker["limits"]["cpu"] == "1500m"


def test_workers_drain_their_longest_run_and_resist_consolidation(
        render_with: Any) -> None:
    rendered = render_with("prod", {"jobTimeoutSeconds": 900})
    worker = named(rendered, DEPLOYMENT, "agent-service-worker")
    assert pod(worker)["terminationGracePeriodSeconds"] >= 900
    annotations = worker["spec"]["template"]["metadata"]["annotations"]
    assert annotations["karpenter.sh/do-not-disrupt"] == "true"
    assert annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "false"
    assert container(worker)["args"] == ["worker"]
    assert container(worker)["livenessProbe"]["httpGet"] == {"path": "/health",
                                                             "port": "metrics"}
    config = rendered.named("agent-config", CONFIG_MAP).inputs["data"]
    assert config["JOB_TIMEOUT_SECONDS"] == config["SHUTDOWN_GRACE_SECONDS"] == "900"
    # No Service sends traffic to workers.
    services = rendered.of_type("kubernetes:core/v1:Service")
    selectors = [s.inputs["spec"]["selector"] for s in services]
    assert all(sel.get("app.kubernetes.io/component") != "worker" for sel in selectors)


def test_local_workers_may_be_consolidated(stacks: dict[str, Rendered]) -> None:
    worker = named(stacks["local"], DEPLOYMENT, "agent-service-worker")
    assert "karpenter.sh/do-not-disrupt" not in worker["spec"]["template"]["metadata"][
        "annotations"]


@pytest.mark.parametrize("stack", STACKS)
def test_deployments_wait_for_the_migration_job(stacks: dict[str, Rendered], stack: str) -> None:
    rendered = stacks[stack]
    job = rendered.named("agent-migrate", "kubernetes:batch/v1:Job")
    assert job.inputs["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert job.inputs["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job.inputs["spec"]["backoffLimit"] == 3
    assert job.inputs["metadata"]["annotations"]["pulumi.com/replaceUnready"] == "true"
    for name in ("agent-service-api", "agent-service-worker"):
        assert job.name in resource(rendered, DEPLOYMENT, name).depends_on


def test_migration_job_is_auto_named_and_rerun_for_a_new_image(stacks: dict[str, Rendered],
                                                                render_with: Any) -> None:
    before = stacks["local"].one("kubernetes:batch/v1:Job")
    # Auto-named, so a new Job runs beside the old one (create-before-delete) and its
    # replacement never cascades into the Deployments that wait for it.
    assert before.autonamed and str(before.k8s_name).startswith("agent-migrate-")
    moved = render_with("local", {"localRegistry": "localhost:5001"})
    after = moved.one("kubernetes:batch/v1:Job")
    assert after.inputs["spec"]["template"] != before.inputs["spec"]["template"]
    assert after.k8s_name != before.k8s_name


def env_sources(rendered: Rendered) -> dict[str, str]:
    """The ConfigMap and Secret the API pods read, as named in their pod template."""
    (main,) = pod(named(rendered, DEPLOYMENT, "agent-service-api"))["containers"]
    found = {}
    for source in main["envFrom"]:
        for key in ("configMapRef", "secretRef"):
            if key in source:
                found[key] = source[key]["name"]
    return found


def test_pods_roll_when_config_or_secrets_change(stacks: dict[str, Rendered],
                                                 render_with: Any) -> None:
    base = env_sources(stacks["dev"])
    assert base == {"configMapRef": stacks["dev"].named("agent-config", CONFIG_MAP).k8s_name,
                    "secretRef": stacks["dev"].named("agent-secrets", SECRET).k8s_name}
    config_changed = env_sources(render_with("dev", {"logLevel": "WARNING"}))
    assert config_changed["configMapRef"] != base["configMapRef"]
    assert config_changed["secretRef"] == base["secretRef"]
    secret_changed = env_sources(render_with(
        "dev", {"llmProviders": ["openai", "offline"]}, secrets={"openaiApiKey": "sk-test-1"}))
    assert secret_changed["secretRef"] != base["secretRef"]


def test_secrets_travel_only_in_the_secret(render_with: Any) -> None:
    rendered = render_with("prod", {"llmProviders": ["anthropic", "openai", "offline"]},
                           secrets={"openaiApiKey": "sk-openai-abc",
                                    "anthropicApiKey": "sk-ant-xyz"})
    secret = rendered.named("agent-secrets", SECRET)
    data = secret.inputs["stringData"]
    assert set(data) == {"DATABASE_URL", "REDIS_URL", "REDIS_PASSWORD", "OPENAI_API_KEY",
                         "ANTHROPIC_API_KEY"}
    assert data["OPENAI_API_KEY"] == "sk-openai-abc"
    assert data["DATABASE_URL"].endswith("?sslmode=require")
    assert data["REDIS_URL"].startswith("rediss://")
    assert "stringData" in secret.secret_paths
    config = rendered.named("agent-config", CONFIG_MAP).inputs["data"]
    assert config["LLM_PROVIDERS"] == "anthropic,openai,offline"
    assert config["ENVIRONMENT"] == "production"
    # The database password may appear in RDS's own (secret) inputs, never in a Kubernetes
    # object other than a Secret.
    everything_else = json.dumps([r.inputs for r in rendered.kubernetes_objects()
                                  if r.inputs.get("kind") != "Secret"])
    for value in ("sk-openai-abc", "sk-ant-xyz", "p" * 32):
        assert value not in everything_else
    for output in rendered.outputs.values():
        assert "sk-openai-abc" not in str(output)


def test_api_autoscaler_bounds_and_behaviour(stacks: dict[str, Rendered]) -> None:
    hpa = named(stacks["prod"], HPA, "agent-service-api")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 12)
    # prod releases canaries: the HPA scales the Rollout that runs the Deployment's pods.
    assert hpa["scaleTargetRef"] == {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                                     "name": "agent-service-api"}
    local = named(stacks["local"], HPA, "agent-service-api")["spec"]
    assert local["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                       "name": "agent-service-api"}
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
               for m in hpa["metrics"]}
    assert targets == {"cpu": 70, "memory": 80}
    assert hpa["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 0
    down = hpa["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] == 300
    assert down["policies"] == [{"type": "Percent", "value": 10, "periodSeconds": 60}]


def test_workers_scale_on_queue_length_with_keda(stacks: dict[str, Rendered]) -> None:
    prod = stacks["prod"]
    scaled = prod.one(SCALED_OBJECT).inputs["spec"]
    assert scaled["scaleTargetRef"]["name"] == "agent-service-worker"
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (2, 10)
    redis = next(t for t in scaled["triggers"] if t["type"] == "redis")["metadata"]
    assert redis["listName"] == QUEUED_LIST == "saq:research:queued"
    assert redis["listLength"] == "20"
    assert redis["enableTLS"] == "true"
    assert redis["address"] == f"{prod.outputs['redis_host']}:6379"
    # The password from the service's current Secret, not the target's pod template: a Rollout
    # that takes its template from a Deployment (canary releases) has no containers to read.
    assert "passwordFromEnv" not in redis
    (trigger,) = [t for t in scaled["triggers"] if t["type"] == "redis"]
    auth = prod.one("kubernetes:keda.sh/v1alpha1:TriggerAuthentication").inputs
    assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}
    secret = prod.named("agent-secrets", "kubernetes:core/v1:Secret").k8s_name
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "password", "name": secret, "key": "REDIS_PASSWORD"}]
    assert not [h for h in prod.of_type(HPA) if h.inputs["metadata"]["name"].endswith("worker")]


def test_workers_scale_on_cpu_without_keda(stacks: dict[str, Rendered]) -> None:
    local = stacks["local"]
    assert not local.of_type(SCALED_OBJECT)
    hpa = named(local, HPA, "agent-service-worker")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 3)


@pytest.mark.parametrize(("stack", "budgets"), [
    ("prod", {"agent-service-api", "agent-service-worker"}),
    ("dev", {"agent-service-api"}),
    ("local", set()),
])
def test_disruption_budgets_guard_replicated_workloads(stacks: dict[str, Rendered], stack: str,
                                                      budgets: set[str]) -> None:
    found = {p.inputs["metadata"]["name"]: p.inputs["spec"] for p in stacks[stack].of_type(PDB)
             if p.inputs["metadata"]["namespace"] == "agent-service"}
    assert set(found) == budgets
    for spec in found.values():
        assert spec["maxUnavailable"] == 1
        assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_network_policies_deny_by_default_and_admit_each_flow(
        stacks: dict[str, Rendered]) -> None:
    prod = service_policies(stacks["prod"])
    assert prod["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    (dns,) = prod["dns-egress"]["egress"]
    assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}
    (data,) = prod["datastore-egress"]["egress"]
    assert data["to"] == [{"ipBlock": {"cidr": "10.40.0.0/16"}}]
    assert [p["port"] for p in data["ports"]] == [5432, 6379]
    (llm,) = prod["llm-egress"]["egress"]
    assert prod["llm-egress"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == \
        "worker"
    assert llm["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}]
    assert llm["ports"] == [{"protocol": "TCP", "port": 443}]
    (api,) = prod["api-ingress"]["ingress"]
    assert api["ports"] == [{"protocol": "TCP", "port": 8000}]
    assert api["from"] == [
        {"ipBlock": {"cidr": "10.40.0.0/16"}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    (metrics,) = prod["worker-metrics-ingress"]["ingress"]
    assert metrics["ports"] == [{"protocol": "TCP", "port": 9100}]


def test_local_policies_name_the_ingress_controller_and_data_namespace(
        stacks: dict[str, Rendered]) -> None:
    local = service_policies(stacks["local"])
    (api,) = local["api-ingress"]["ingress"]
    assert api["from"][0] == {"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "kube-system"}}}
    (data,) = local["datastore-egress"]["egress"]
    assert data["to"] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "agent-data"}}}]


def test_llm_egress_allow_list_is_configurable(render_with: Any) -> None:
    rendered = render_with("dev", {"llmEgressCidrs": ["203.0.113.0/24"]})
    (llm,) = service_policies(rendered)["llm-egress"]["egress"]
    assert llm["to"] == [{"ipBlock": {"cidr": "203.0.113.0/24"}}]


def test_prod_alb_ingress_serves_https_and_redirects_http(render_with: Any) -> None:
    arn = "arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-123456789abc"
    rendered = render_with("prod", {"ingressEnabled": True, "ingressHost": "agent.example.com",
                                    "ingressCertificateArn": arn,
                                    "ingressScheme": "internet-facing"})
    ingress = rendered.one(INGRESS).inputs
    annotations = ingress["metadata"]["annotations"]
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert annotations["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] == "/health"
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == arn
    assert annotations["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    assert json.loads(annotations["alb.ingress.kubernetes.io/listen-ports"]) == [
        {"HTTP": 80}, {"HTTPS": 443}]
    assert ingress["spec"]["rules"][0]["host"] == "agent.example.com"
    namespace = named(rendered, "kubernetes:core/v1:Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["elbv2.k8s.aws/pod-readiness-gate-inject"] == \
        "enabled"


def test_dev_alb_is_internal_http(stacks: dict[str, Rendered]) -> None:
    annotations = stacks["dev"].one(INGRESS).inputs["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internal"
    assert "alb.ingress.kubernetes.io/certificate-arn" not in annotations


def test_prod_ships_without_an_ingress_until_tls_is_configured(
        stacks: dict[str, Rendered]) -> None:
    assert not stacks["prod"].of_type(INGRESS)


def test_local_ingress_uses_the_configured_class_and_tls_secret(render_with: Any) -> None:
    rendered = render_with("local", {"ingressClassName": "nginx",
                                     "ingressTlsSecret": "agent-tls"})
    spec = rendered.one(INGRESS).inputs["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"hosts": ["agent.localhost"], "secretName": "agent-tls"}]
    # Only the ALB controller is installed by the program: any other class is not awaited, so
    # a cluster without that controller gets a deploy, not a ten-minute hang.
    assert rendered.one(INGRESS).inputs["metadata"]["annotations"] == {
        "pulumi.com/skipAwait": "true"}
    assert rendered.outputs["api_url"] == "https://agent.localhost"


def test_alb_ingress_is_awaited(stacks: dict[str, Rendered]) -> None:
    annotations = stacks["dev"].one(INGRESS).inputs["metadata"]["annotations"]
    assert "pulumi.com/skipAwait" not in annotations
    assert stacks["dev"].outputs["api_port_forward"] == (
        "kubectl -n agent-service port-forward svc/agent-service-api 8000:80")


def test_the_service_role_comes_through_pod_identity(render_with: Any) -> None:
    role = "arn:aws:iam::123456789012:role/agent-service"
    rendered = render_with("dev", {"serviceAccountRoleArn": role})
    account = named(rendered, "kubernetes:core/v1:ServiceAccount", "agent-service")
    assert "annotations" not in account["metadata"]
    assert account["automountServiceAccountToken"] is False
    association = rendered.named("addons-service-pod-identity").inputs
    assert (association["namespace"], association["serviceAccount"], association["roleArn"]) == (
        "agent-service", "agent-service", role)
    # Pod Identity gives a pod its role when the pod starts: setting the role rolls the pods.
    for deployment in rendered.of_type("kubernetes:apps/v1:Deployment"):
        if deployment.inputs["metadata"]["namespace"] != "agent-service":
            continue
        annotations = deployment.inputs["spec"]["template"]["metadata"]["annotations"]
        assert annotations["agent-platform.io/aws-role"] == role
    # The VPC CNI enforces NetworkPolicies: the pods reach the node's Pod Identity agent, or
    # they would never get the role's credentials.
    policies = service_policies(rendered)
    assert policies["pod-identity-egress"] == {
        "podSelector": {}, "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}],
                    "ports": [{"protocol": "TCP", "port": 80}]}]}
    assert "pod-identity-egress" not in service_policies(render_with("dev", {}))
    assert not render_with("dev", {}).of_type(
        "aws:eks/podIdentityAssociation:PodIdentityAssociation") or all(
        a.inputs["serviceAccount"] != "agent-service"
        for a in render_with("dev", {}).of_type(
            "aws:eks/podIdentityAssociation:PodIdentityAssociation"))


@pytest.mark.parametrize(("stack", "overrides", "expected"), [
    ("dev", {"apiMinReplicas": 5, "apiMaxReplicas": 4},
     "agent-platform:apiMinReplicas = 5 is invalid: must not exceed apiMaxReplicas (4)"),
    ("dev", {"workerMinReplicas": 0},
     "agent-platform:workerMinReplicas = 0 is invalid: must be between 1 and 100"),
    ("dev", {"apiMemoryRequest": "2Gi", "apiMemoryLimit": "1Gi"},
     'agent-platform:apiMemoryLimit = "1Gi" is invalid: must be at least apiMemoryRequest (2Gi)'),
    ("dev", {"workerCpuRequest": "lots"},
     'agent-platform:workerCpuRequest = "lots" is invalid: expected CPU such as 500m or 2'),
    ("dev", {"ingressHost": "Not A Host!"},
     'agent-platform:ingressHost = "Not A Host!" is invalid: expected a lower-case DNS name'),
    ("prod", {"ingressEnabled": True},
     "agent-platform:ingressCertificateArn = null is invalid: prod serves the API over TLS "
     "only"),
    ("prod", {"apiMinReplicas": 1},
     "agent-platform:apiMinReplicas = 1 is invalid: prod keeps at least 2 pods"),
    ("dev", {"llmProviders": ["openai"]},
     "agent-platform:openaiApiKey = null is invalid: llmProviders lists openai, so set its API "
     "key with `pulumi config set --secret openaiApiKey <key>`"),
    ("dev", {"llmProviders": ["gemini"]},
     'agent-platform:llmProviders = "gemini" is invalid: allowed values are openai, anthropic, '
     "offline"),
    ("dev", {"llmEgressCidrs": ["10.0.0.1/8"]},
     'agent-platform:llmEgressCidrs = "10.0.0.1/8" is invalid: expected IPv4 CIDRs'),
    ("dev", {"ingressScheme": "public"},
     'agent-platform:ingressScheme = "public" is invalid: allowed values are internal, '
     "internet-facing"),
])
def test_bad_service_settings_name_the_key(stack: str, overrides: dict[str, Any],
                                           expected: str) -> None:
    assert expected in config_error(stack, **overrides)


def test_plain_text_api_keys_are_refused(render_with: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        render_with("dev", {"llmProviders": ["openai"], "openaiApiKey": "sk-plain"})
    message = str(caught.value)
    assert "agent-platform:openaiApiKey" in message and "must be Pulumi secrets" in message
    assert "sk-plain" not in message
