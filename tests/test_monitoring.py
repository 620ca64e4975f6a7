"""The monitoring stack as each stack renders it: chart values, monitors that Prometheus really
selects, rules from config, dashboards the Grafana sidecar picks up, and receiver secrets."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from promtool import amtool
from test_config import config_error, settings_for

from components.observability.alert_rules import rule_groups
from components.observability.monitoring import PROMETHEUS_STACK_CHART
from harness import STACKS, Rendered, Resource, stack_config

RELEASE = "kubernetes:helm.sh/v3:Release"
SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"


def chart(rendered: Rendered) -> dict[str, Any]:
    (release,) = [r.inputs for r in rendered.of_type(RELEASE)
                  if r.inputs["chart"] == "kube-prometheus-stack"]
    return dict(release)


def secret(rendered: Rendered, logical_name: str) -> Resource:
    return rendered.named(logical_name, "kubernetes:core/v1:Secret")


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    wanted = selector["matchLabels"]
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


@pytest.mark.parametrize("stack", STACKS)
def test_chart_is_pinned_and_sized_per_stack(stacks: dict[str, Rendered], stack: str) -> None:
    release = chart(stacks[stack])
    assert (release["version"], release["repositoryOpts"]["repo"]) == PROMETHEUS_STACK_CHART[1:]
    assert release["namespace"] == "monitoring"
    assert release["atomic"] is True
    spec = release["values"]["prometheus"]["prometheusSpec"]
    expected = {"prod": (2, "15d", "50Gi"), "dev": (1, "7d", "20Gi"), "local": (1, "2d", None)}
    replicas, retention, size = expected[stack]
    assert (spec["replicas"], spec["retention"]) == (replicas, retention)
    assert release["values"]["alertmanager"]["alertmanagerSpec"]["replicas"] == replicas
    alertmanager = release["values"]["alertmanager"]["alertmanagerSpec"]
    if size:
        claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
        assert claim["resources"]["requests"]["storage"] == size
        assert alertmanager["storage"]["volumeClaimTemplate"]["spec"]["resources"]
    else:
        assert "storageSpec" not in spec
        assert "storage" not in alertmanager


@pytest.mark.parametrize(("stack", "managed"), [("prod", True), ("dev", True),
                                                ("local", False)])
def test_unreachable_control_plane_scrapes_are_off_on_eks(stacks: dict[str, Rendered],
                                                          stack: str, managed: bool) -> None:
    values = chart(stacks[stack])["values"]
    for component in ("kubeScheduler", "kubeControllerManager", "kubeEtcd", "kubeProxy"):
        assert (values.get(component) == {"enabled": False}) is managed, component
    if managed:
        assert values["defaultRules"]["rules"]["etcd"] is False


@pytest.mark.parametrize("stack", STACKS)
def test_prometheus_selects_our_monitors_and_rules(stacks: dict[str, Rendered],
                                                   stack: str) -> None:
    rendered = stacks[stack]
    spec = chart(rendered)["values"]["prometheus"]["prometheusSpec"]
    # The API's, and Argo Rollouts' controller's where the service is released as canaries.
    service_monitors = rendered.of_type(SERVICE_MONITOR)
    assert len(service_monitors) == (2 if stack != "local" else 1)
    (worker_monitor,) = rendered.of_type(POD_MONITOR)
    (rule,) = rendered.of_type(RULE)
    for selector, obj in (*(("serviceMonitorSelector", m) for m in service_monitors),
                          ("podMonitorSelector", worker_monitor), ("ruleSelector", rule)):
        assert matches(spec[selector], obj.inputs["metadata"]["labels"]), selector
        # Selected in any namespace: the monitors live beside the service.
        assert spec[selector.replace("Selector", "NamespaceSelector")] == {}


@pytest.mark.parametrize("stack", STACKS)
def test_monitors_select_the_service_and_its_named_ports(stacks: dict[str, Rendered],
                                                         stack: str) -> None:
    rendered = stacks[stack]
    (api_monitor,) = [m.inputs for m in rendered.of_type(SERVICE_MONITOR)
                      if m.inputs["metadata"]["name"] == "agent-service-api"]
    (service,) = [s.inputs for s in rendered.of_type("kubernetes:core/v1:Service")
                  if s.inputs["metadata"]["name"] == "agent-service-api"]
    assert api_monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    assert matches(api_monitor["spec"]["selector"], service["metadata"]["labels"])
    (endpoint,) = api_monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"

    worker_monitor = rendered.one(POD_MONITOR).inputs
    (worker,) = [d.inputs for d in rendered.of_type("kubernetes:apps/v1:Deployment")
                 if d.inputs["metadata"]["name"] == "agent-service-worker"]
    template = worker["spec"]["template"]
    assert matches(worker_monitor["spec"]["selector"], template["metadata"]["labels"])
    ports = {p["name"] for c in template["spec"]["containers"] for p in c["ports"]}
    (pod_endpoint,) = worker_monitor["spec"]["podMetricsEndpoints"]
    assert pod_endpoint["port"] in ports


def test_a_monitor_without_the_label_would_be_ignored(stacks: dict[str, Rendered]) -> None:
    spec = chart(stacks["prod"])["values"]["prometheus"]["prometheusSpec"]
    assert not matches(spec["serviceMonitorSelector"], {"app": "agent-service"})


def test_rules_are_generated_from_the_stack_config(stacks: dict[str, Rendered],
                                                   render_with: Any) -> None:
    rule = stacks["prod"].one(RULE).inputs
    expected = rule_groups(settings_for("prod").monitoring.alerts, "agent-service")
    assert json.loads(json.dumps(rule["spec"]["groups"])) == json.loads(json.dumps(expected))
    tighter = render_with("prod", {"sloAvailabilityTarget": "99.99",
                                   "llmCostBudgetUsdPerHour": "2.5"}).one(RULE).inputs
    text = json.dumps(tighter["spec"]["groups"])
    assert "> 0.00144" in text  # 14.4 x (1 - 0.9999)
    assert "agent_cost_usd_total" in text and "> 2.5" in text


@pytest.mark.parametrize("stack", STACKS)
def test_dashboards_reach_the_grafana_sidecar(stacks: dict[str, Rendered], stack: str) -> None:
    rendered = stacks[stack]
    sidecar = chart(rendered)["values"]["grafana"]["sidecar"]["dashboards"]
    boards = [c.inputs for c in rendered.of_type("kubernetes:core/v1:ConfigMap")
              if c.inputs["metadata"]["name"].startswith("agent-service-")
              and c.inputs["metadata"]["namespace"] == "monitoring"]
    assert len(boards) == 3
    for board in boards:
        assert board["metadata"]["labels"][sidecar["label"]] == sidecar["labelValue"]
        (document,) = board["data"].values()
        assert json.loads(document)["uid"] == board["metadata"]["name"]


def test_grafana_admin_password_is_random_and_secret(stacks: dict[str, Rendered]) -> None:
    prod = stacks["prod"]
    assert "grafana_admin_password" in prod.secret_outputs
    admin = secret(prod, "monitoring-grafana-admin")
    assert "stringData" in admin.secret_paths
    assert admin.inputs["stringData"]["admin-password"] == prod.outputs["grafana_admin_password"]
    grafana = chart(prod)["values"]["grafana"]
    # The chart is handed the auto-named Secret's name, so a new password upgrades the release.
    assert admin.autonamed
    assert grafana["admin"]["existingSecret"] == admin.k8s_name
    assert grafana["ingress"] == {"enabled": False}


def test_grafana_ingress_uses_the_service_ingress_tls(render_with: Any) -> None:
    arn = "arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-123456789abc"
    rendered = render_with("prod", {"grafanaIngressHost": "grafana.example.com",
                                    "ingressCertificateArn": arn})
    ingress = chart(rendered)["values"]["grafana"]["ingress"]
    assert ingress["hosts"] == ["grafana.example.com"]
    assert ingress["annotations"]["alb.ingress.kubernetes.io/certificate-arn"] == arn
    assert ingress["annotations"]["alb.ingress.kubernetes.io/ssl-redirect"] == "443"


RECEIVERS = {"alertSlackWebhookUrl": "https://hooks.slack.com/services/T0/B0/secretpath",
             "alertPagerdutyRoutingKey": "pd-routing-key-0123456789",
             "alertSmtpPassword": "smtp-pass-42"}
EMAIL = {"alertEmailTo": "oncall@example.com", "alertEmailFrom": "alerts@example.com",
         "alertSmtpSmarthost": "smtp.example.com:587", "alertSmtpUsername": "alerts"}


def alertmanager_yaml(rendered: Rendered) -> dict[str, Any]:
    config = secret(rendered, "monitoring-alertmanager-config")
    assert "stringData" in config.secret_paths
    spec = chart(rendered)["values"]["alertmanager"]["alertmanagerSpec"]
    assert config.autonamed and spec["configSecret"] == config.k8s_name
    return dict(yaml.safe_load(config.inputs["stringData"]["alertmanager.yaml"]))


def test_receivers_come_from_secret_config_only(render_with: Any, tmp_path: Path) -> None:
    rendered = render_with("prod", EMAIL, secrets=RECEIVERS)
    config = alertmanager_yaml(rendered)
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["page"]["pagerduty_configs"][0]["routing_key"] == RECEIVERS[
        "alertPagerdutyRoutingKey"]
    notify = receivers["notify"]
    assert notify["slack_configs"][0]["api_url"] == RECEIVERS["alertSlackWebhookUrl"]
    assert notify["email_configs"][0]["auth_password"] == RECEIVERS["alertSmtpPassword"]
    routes = config["route"]["routes"]
    assert {"receiver": "page", "matchers": ['severity="critical"'], "continue": True} in routes
    assert routes[-1] == {"receiver": "notify"}
    # The credentials appear nowhere but in that Secret.
    elsewhere = json.dumps([r.inputs for r in rendered.resources
                            if r.name != "monitoring-alertmanager-config"])
    for value in RECEIVERS.values():
        assert value not in elsewhere
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    checked = subprocess.run([amtool(), "check-config", str(path)], capture_output=True,
                             text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_without_receivers_alerts_go_nowhere_but_are_valid(stacks: dict[str, Rendered],
                                                           tmp_path: Path) -> None:
    config = alertmanager_yaml(stacks["dev"])
    assert [r["name"] for r in config["receivers"]] == ["null", "notify"]
    assert config["route"]["routes"][-1] == {"receiver": "null"}
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    checked = subprocess.run([amtool(), "check-config", str(path)], capture_output=True,
                             text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_monitoring_can_be_turned_off(render_with: Any) -> None:
    rendered = render_with("dev", {"monitoringEnabled": False, "progressiveDelivery": "off"})
    assert not rendered.of_type(SERVICE_MONITOR)
    assert "kube-prometheus-stack" not in {r.inputs["chart"] for r in rendered.of_type(RELEASE)}
    assert "grafana_admin_password" not in rendered.outputs


@pytest.mark.parametrize(("stack", "overrides", "expected"), [
    ("dev", {"sloLatencyThresholdSeconds": "0.3"},
     'agent-platform:sloLatencyThresholdSeconds = "0.3" is invalid: must be a histogram bucket '
     "of the service: 0.1, 0.25, 0.5, 1, 2.5, 5, 10"),
    ("dev", {"sloAvailabilityTarget": "100"},
     'agent-platform:sloAvailabilityTarget = "100" is invalid: must be between 50 and 99.999'),
    ("dev", {"monitoringEnabled": False},
     'agent-platform:progressiveDelivery = "canary" is invalid: a canary is judged on '
     "Prometheus' metrics: turn monitoringEnabled on, or set progressiveDelivery to off"),
    ("dev", {"alertErrorRatio": "five percent"},
     'agent-platform:alertErrorRatio = "five percent" is invalid: expected a number such as '
     "0.05"),
    ("dev", {"prometheusRetention": "15 days"},
     'agent-platform:prometheusRetention = "15 days" is invalid: expected a duration such as '
     "15d"),
    ("dev", {"alertEmailTo": "oncall@example.com"},
     "agent-platform:alertEmailFrom = null is invalid: e-mail alerts need alertEmailTo, "
     "alertEmailFrom and alertSmtpSmarthost together"),
    ("prod", {"grafanaIngressHost": "grafana.example.com"},
     'agent-platform:grafanaIngressHost = "grafana.example.com" is invalid: prod serves Grafana '
     "over TLS only"),
    ("dev", {"alertSlackWebhookUrl": "https://hooks.slack.com/services/plain"},
     "agent-platform:alertSlackWebhookUrl = \"[redacted]\" is invalid: alert receiver "
     "credentials must be Pulumi secrets"),
])
def test_bad_monitoring_settings_name_the_key(stack: str, overrides: dict[str, Any],
                                              expected: str) -> None:
    message = config_error(stack, **overrides)
    assert expected in message
    assert "hooks.slack.com" not in message


def test_stack_files_declare_no_receiver_credentials() -> None:
    for stack in STACKS:
        config = stack_config(stack)
        assert not {k for k in config if k.rsplit(":", 1)[-1] in RECEIVERS}, stack
