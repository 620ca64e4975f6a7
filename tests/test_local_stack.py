"""The local stack: no AWS at all, in-cluster Postgres and Valkey, a locally built image."""

from __future__ import annotations

from typing import Any

from harness import Rendered


def test_local_registers_no_aws_resource(stacks: dict[str, Rendered]) -> None:
    local = stacks["local"]
    aws_types = [r.urn for r in local.resources
                 if r.type.startswith(("aws:", "pulumi:providers:aws"))]
    assert not aws_types


def test_kubernetes_provider_targets_the_configured_context(render_with: Any) -> None:
    rendered = render_with("local", {"kubeContext": "kind-agent"})
    assert rendered.one("pulumi:providers:kubernetes").inputs["context"] == "kind-agent"


def test_postgres_and_valkey_run_as_hardened_stateful_sets(stacks: dict[str, Rendered]) -> None:
    local = stacks["local"]
    sets = {s.inputs["metadata"]["name"]: s.inputs
            for s in local.of_type("kubernetes:apps/v1:StatefulSet")}
    assert set(sets) == {"postgres", "valkey"}
    images = {name: spec["spec"]["template"]["spec"]["containers"][0]["image"]
              for name, spec in sets.items()}
    assert images == {"postgres": "postgres:17.6-alpine", "valkey": "valkey/valkey:8.1.3-alpine"}
    for name, statefulset in sets.items():
        pod = statefulset["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        container = pod["containers"][0]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], name
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert container["readinessProbe"] and container["livenessProbe"], name
        assert container["resources"]["limits"]["memory"], name
        claim = statefulset["spec"]["volumeClaimTemplates"][0]["spec"]
        assert claim["resources"]["requests"]["storage"] == "2Gi", name


def test_namespaces_enforce_restricted_pod_security(stacks: dict[str, Rendered]) -> None:
    namespaces = {n.inputs["metadata"]["name"]: n.inputs["metadata"]["labels"]
                  for n in stacks["local"].of_type("kubernetes:core/v1:Namespace")}
    assert set(namespaces) == {"agent-data", "agent-service", "monitoring"}
    for name in ("agent-data", "agent-service"):
        for mode in ("enforce", "audit", "warn"):
            assert namespaces[name][f"pod-security.kubernetes.io/{mode}"] == "restricted"
    # node-exporter needs the host's PID and network namespaces; everything else is warned.
    assert namespaces["monitoring"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert namespaces["monitoring"]["pod-security.kubernetes.io/warn"] == "baseline"


def test_passwords_travel_only_as_secrets(stacks: dict[str, Rendered]) -> None:
    local = stacks["local"]
    secrets = local.of_type("kubernetes:core/v1:Secret")
    assert {s.name for s in secrets} == {
        "data-postgres", "data-valkey", "agent-secrets", "monitoring-grafana-admin",
        "monitoring-alertmanager-config"}
    # Each is auto-named, so a new password or key replaces it create-before-delete.
    assert all(s.autonamed for s in secrets)
    for secret in secrets:
        assert "stringData" in secret.secret_paths, secret.urn
    for resource in local.of_type("kubernetes:apps/v1:StatefulSet"):
        assert "pppppppp" not in str(resource.inputs), resource.urn
    assert {"database_url", "redis_url"} <= local.secret_outputs
    assert local.outputs["database_url"].startswith(
        "postgresql://agent:") and "@postgres.agent-data.svc.cluster.local:5432/agent" in \
        local.outputs["database_url"]
    assert local.outputs["redis_url"].startswith("redis://:")


def test_image_is_only_built_without_a_registry(stacks: dict[str, Rendered]) -> None:
    local = stacks["local"]
    image = local.one("docker:index/image:Image").inputs
    assert image["skipPush"] is True
    assert image["imageName"].startswith("agent-service:src-")
    assert local.outputs["image_ref"] == image["imageName"]


def test_image_is_pushed_to_a_configured_local_registry(render_with: Any) -> None:
    rendered = render_with("local", {"localRegistry": "localhost:5001"})
    image = rendered.one("docker:index/image:Image").inputs
    assert image["skipPush"] is False
    assert image["imageName"].startswith("localhost:5001/agent-service:src-")
    assert rendered.outputs["image_ref"].startswith("localhost:5001/agent-service@sha256:")


def test_data_namespace_denies_by_default_and_admits_labelled_clients(
        stacks: dict[str, Rendered]) -> None:
    policies = {p.inputs["metadata"]["name"]: p.inputs["spec"]
                for p in stacks["local"].of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
                if p.inputs["metadata"]["namespace"] == "agent-data"}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for role, port in (("postgres", 5432), ("valkey", 6379)):
        (rule,) = policies[f"{role}-clients"]["ingress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": port}]
        assert rule["from"] == [{"namespaceSelector": {
            "matchLabels": {"agent-platform/data-access": "true"}}}]
