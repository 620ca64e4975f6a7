"""Tracing as the stacks render it: the collector, Jaeger, and the service pointed at them."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from test_config import config_error

from components.observability.tracing import COLLECTOR_CHART, JAEGER_IMAGE, Tracing
from harness import Rendered

RELEASE = "kubernetes:helm.sh/v3:Release"


def collector(rendered: Rendered) -> dict[str, Any] | None:
    found = [r.inputs for r in rendered.of_type(RELEASE)
             if r.inputs["chart"] == "opentelemetry-collector"]
    return dict(found[0]) if found else None


def service_config(rendered: Rendered) -> dict[str, str]:
    (config,) = [c.inputs["data"] for c in rendered.of_type("kubernetes:core/v1:ConfigMap")
                 if c.name == "agent-config"]
    return dict(config)


def policies(rendered: Rendered) -> set[str]:
    return {p.inputs["metadata"]["name"]
            for p in rendered.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
            if p.inputs["metadata"]["namespace"] == "agent-service"}


def test_prod_traces_through_the_collector_to_jaeger(stacks: dict[str, Rendered]) -> None:
    prod = stacks["prod"]
    release = collector(prod)
    assert release is not None
    assert (release["version"], release["namespace"]) == (COLLECTOR_CHART[1], "monitoring")
    values = release["values"]
    assert values["replicaCount"] == 2 and values["mode"] == "deployment"
    config = values["alternateConfig"]
    assert "config" not in values
    # Traces only, and the health check the chart's probes ask.
    assert list(config["service"]["pipelines"]) == ["traces"]
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["processors"] == ["memory_limiter", "batch"]
    (exporter,) = pipeline["exporters"]
    assert config["exporters"][exporter]["endpoint"] == "jaeger.tracing.svc.cluster.local:4317"
    assert config["service"]["extensions"] == ["health_check"]
    assert config["extensions"]["health_check"]["endpoint"] == "${env:MY_POD_IP}:13133"

    (jaeger,) = prod.of_type("kubernetes:apps/v1:StatefulSet")
    assert jaeger.inputs["metadata"]["namespace"] == "tracing"
    (ingress,) = [p.inputs["spec"]["ingress"]
                  for p in prod.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
                  if p.inputs["metadata"]["name"] == "jaeger-ingress"]
    assert ingress[0]["from"] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "monitoring"}}}]
    spec = jaeger.inputs["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    assert container["image"] == JAEGER_IMAGE
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "20Gi"
    (config,) = [c.inputs for c in prod.of_type("kubernetes:core/v1:ConfigMap")
                 if c.name == "tracing-jaeger-config"]
    badger = yaml.safe_load(config["data"]["config.yaml"])["extensions"]["jaeger_storage"]
    assert badger["backends"]["main"]["badger"]["ttl"]["spans"] == "72h"

    env = service_config(prod)
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == \
        "http://otel-collector.monitoring.svc.cluster.local:4318"
    assert (env["OTEL_TRACES_SAMPLER"], env["OTEL_TRACES_SAMPLER_ARG"]) == (
        "parentbased_traceidratio", "0.1")
    assert "tracing-egress" in policies(prod)
    (grafana,) = [r.inputs["values"]["grafana"] for r in prod.of_type(RELEASE)
                  if r.inputs["chart"] == "kube-prometheus-stack"]
    assert grafana["additionalDataSources"][0]["type"] == "jaeger"


def test_pods_describe_themselves_to_the_trace_backend(stacks: dict[str, Rendered]) -> None:
    (api,) = [d.inputs for d in stacks["prod"].of_type("kubernetes:apps/v1:Deployment")
              if d.inputs["metadata"]["name"] == "agent-service-api"]
    env = {e["name"]: e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert "k8s.pod.name=$(POD_NAME)" in env["OTEL_RESOURCE_ATTRIBUTES"]["value"]


@pytest.mark.parametrize("stack", ["dev", "local"])
def test_tracing_is_off_where_the_stack_says_so(stacks: dict[str, Rendered], stack: str) -> None:
    rendered = stacks[stack]
    assert collector(rendered) is None
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in service_config(rendered)
    assert "tracing-egress" not in policies(rendered)


def test_an_external_otlp_backend_gets_its_token_from_a_secret(render_with: Any) -> None:
    rendered = render_with("prod", {"tracingBackend": "otlp",
                                    "tracingOtlpEndpoint": "https://tempo.example.com:4318",
                                    "tracingOtlpAuthHeader": "authorization"},
                           secrets={"tracingOtlpAuthToken": "Bearer trace-token-123"})
    release = collector(rendered)
    assert release is not None
    exporter = release["values"]["alternateConfig"]["exporters"]["otlphttp/backend"]
    assert exporter == {"endpoint": "https://tempo.example.com:4318",
                        "headers": {"authorization": "${env:OTLP_AUTH_TOKEN}"}}
    secret = rendered.named("tracing-auth", "kubernetes:core/v1:Secret")
    (env,) = release["values"]["extraEnvs"]
    assert env["valueFrom"]["secretKeyRef"] == {"name": secret.k8s_name, "key": "token"}
    assert secret.inputs["stringData"]["token"] == "Bearer trace-token-123"
    assert "stringData" in secret.secret_paths
    assert not rendered.of_type("kubernetes:apps/v1:StatefulSet")
    others = json.dumps([r.inputs for r in rendered.resources if r is not secret])
    assert "trace-token-123" not in others


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"tracingBackend": "otlp"},
     "agent-platform:tracingOtlpEndpoint = null is invalid: tracingBackend otlp forwards traces "
     "here; set it"),
    ({"monitoringEnabled": False},
     "agent-platform:tracingEnabled = true is invalid: tracing runs in the monitoring namespace"),
    ({"tracingSampleRatio": "2"},
     'agent-platform:tracingSampleRatio = "2" is invalid: must be between 0 and 1'),
    ({"tracingSampleRatio": "half"},
     'agent-platform:tracingSampleRatio = "half" is invalid: expected a number such as 0.1'),
    ({"tracingBackend": "zipkin"},
     'agent-platform:tracingBackend = "zipkin" is invalid: allowed values are jaeger, otlp'),
    ({"tracingOtlpAuthToken": "plain-token"},
     'agent-platform:tracingOtlpAuthToken = "[redacted]" is invalid: must be a Pulumi secret'),
])
def test_bad_tracing_settings_name_the_key(overrides: dict[str, Any], expected: str) -> None:
    message = config_error("prod", **overrides)
    assert expected in message
    assert "plain-token" not in message


def _nulls(value: Any, path: str = "") -> list[str]:
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [n for key, item in value.items() for n in _nulls(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [n for index, item in enumerate(value) for n in _nulls(item, f"{path}[{index}]")]
    return []


@pytest.mark.parametrize("exporter", [
    {"otlp/backend": {"endpoint": "jaeger.tracing.svc.cluster.local:4317"}},
    {"otlphttp/backend": {"endpoint": "https://tempo.example.com:4318"}}])
def test_the_collector_values_hold_no_null(exporter: dict[str, Any]) -> None:
    """The values as the program hands them to the provider (the harness drops nulls, so a
    rendered stack cannot show one): nothing relies on a null deleting a chart default."""
    values = Tracing.collector_values(exporter)
    assert _nulls(values) == []
