"""The generated rules pass `promtool check rules`, and `promtool test rules` proves that every
alert fires on a bad series and stays silent on a healthy one."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from promtool import promtool
from test_config import settings_for

from components.config.monitoring import AlertThresholds
from components.observability.alert_rules import (
    BURN_RATE_ALERTS,
    alert_names,
    rule_groups,
    runbook_anchor,
)
from harness import ROOT

NS = 'namespace="agent-service"'
THRESHOLDS = AlertThresholds(
    availability_target=0.999, latency_target=0.99,
    latency_threshold="0.5", error_ratio=0.05, latency_p95_seconds=1.0,
    latency_p99_seconds=2.5, queue_depth=100, queue_age_seconds=600, llm_error_ratio=0.1,
    llm_cost_usd_per_hour=10.0, runbook_url="https://example.test/docs/runbooks.md")
GROUPS = rule_groups(THRESHOLDS, "agent-service")


def series(metric: str, values: str, **labels: str) -> dict[str, str]:
    matchers = ",".join([NS, *(f'{k}="{v}"' for k, v in labels.items())])
    return {"series": f"{metric}{{{matchers}}}", "values": values}


def requests(ok: str, failed: str, route: str = "/api/v1/research") -> list[dict[str, str]]:
    return [series("http_requests_total", ok, route=route, status="202", method="POST"),
            series("http_requests_total", failed, route=route, status="500", method="POST")]


def histogram(counts: dict[str, str], route: str = "/api/v1/research/{run_id}") \
        -> list[dict[str, str]]:
    """Cumulative buckets given as le -> values; the count is the +Inf bucket."""
    found = [series("http_request_duration_seconds_bucket", values, route=route, le=le,
                    method="GET") for le, values in counts.items()]
    found.append(series("http_request_duration_seconds_count", counts["+Inf"], route=route,
                        method="GET"))
    return found


def spread(bad_le: str, all_values: str) -> dict[str, str]:
    """Every request lands in bucket `bad_le`: smaller buckets stay 0."""
    bounds = ["0.1", "0.5", "1.0", "2.5", "5.0", "+Inf"]
    return {le: ("0x100" if bounds.index(le) < bounds.index(bad_le) else all_values)
            for le in bounds}


@dataclass
class Case:
    bad: list[dict[str, str]]
    good: list[dict[str, str]]
    at: str
    fires: list[dict[str, str]] = field(default_factory=lambda: [{}])
    """Labels of each firing alert, besides the rule's own."""


def burn(slo: str) -> list[dict[str, str]]:
    # At 70 minutes the 1h/5m, 6h/30m and 1d/2h pairs have held longer than their `for`;
    # 3d/6h needs 3 hours.
    return [{"slo": slo, "window": w} for w, *_ in BURN_RATE_ALERTS[:3]]


CASES: dict[str, Case] = {
    "AgentApiAvailabilityBudgetBurn": Case(
        requests("0+60x100", "0+60x100"), requests("0+60x100", "0x100"), "70m",
        burn("availability")),
    "AgentApiLatencyBudgetBurn": Case(
        histogram(spread("1.0", "0+60x100")),
        # Slow event streams do not count: they stay open for a run's whole life.
        histogram(spread("0.1", "0+60x100")) + histogram(
            spread("+Inf", "0+60x100"), route="/api/v1/research/{run_id}/events"),
        "70m", burn("latency")),
    "AgentApiErrorRatioHigh": Case(
        requests("0+60x30", "0+60x30"), requests("0+99x30", "0+1x30"), "15m",
        [{"slo": "availability"}]),
    "AgentApiLatencyP95High": Case(
        histogram(spread("2.5", "0+60x30")), histogram(spread("0.1", "0+60x30")), "20m"),
    "AgentApiLatencyP99High": Case(
        histogram(spread("5.0", "0+60x30")), histogram(spread("0.5", "0+60x30")), "20m"),
    "AgentApiTargetsDown": Case(
        [series("up", "0x20", container="api", pod="agent-service-api-1")],
        [series("up", "1x20", container="api", pod="agent-service-api-1")], "10m",
        [{}]),
    "AgentWorkersAbsent": Case(
        [series("up", "0x20", container="worker", pod="agent-service-worker-1")],
        [series("up", "1x20", container="worker", pod="agent-service-worker-1")], "10m",
        [{}]),
    "AgentPodsNotReady": Case(
        [series("kube_pod_status_ready", "0x30", pod="api-1", condition="true"),
         series("kube_pod_status_phase", "1x30", pod="api-1", phase="Running")],
        # A finished migration Job's pod is never ready, and must not alert.
        [series("kube_pod_status_ready", "0x30", pod="migrate-1", condition="true"),
         series("kube_pod_status_phase", "1x30", pod="migrate-1", phase="Succeeded"),
         series("kube_pod_status_ready", "1x30", pod="api-1", condition="true"),
         series("kube_pod_status_phase", "1x30", pod="api-1", phase="Running")],
        "20m", [{"namespace": "agent-service", "pod": "api-1", "condition": "true"}]),
    "AgentPodCrashLooping": Case(
        [series("kube_pod_container_status_waiting_reason", "1x20", pod="worker-1",
                container="worker", reason="CrashLoopBackOff")],
        [series("kube_pod_container_status_waiting_reason", "0x20", pod="worker-1",
                container="worker", reason="CrashLoopBackOff")],
        "10m", [{"pod": "worker-1", "container": "worker"}]),
    "AgentHpaAtMaximum": Case(
        [series("kube_horizontalpodautoscaler_status_current_replicas", "12x30",
                horizontalpodautoscaler="agent-service-api"),
         series("kube_horizontalpodautoscaler_spec_max_replicas", "12x30",
                horizontalpodautoscaler="agent-service-api")],
        [series("kube_horizontalpodautoscaler_status_current_replicas", "5x30",
                horizontalpodautoscaler="agent-service-api"),
         series("kube_horizontalpodautoscaler_spec_max_replicas", "12x30",
                horizontalpodautoscaler="agent-service-api")],
        "20m", [{"namespace": "agent-service", "horizontalpodautoscaler": "agent-service-api"}]),
    "AgentPodMemoryNearLimit": Case(
        [series("container_memory_working_set_bytes", "950x30", pod="api-1", container="api"),
         series("kube_pod_container_resource_limits", "1000x30", pod="api-1", container="api",
                resource="memory")],
        [series("container_memory_working_set_bytes", "500x30", pod="api-1", container="api"),
         series("kube_pod_container_resource_limits", "1000x30", pod="api-1", container="api",
                resource="memory")],
        "20m", [{"pod": "api-1", "container": "api"}]),
    "AgentPodCpuThrottled": Case(
        [series("container_cpu_cfs_throttled_periods_total", "0+50x30", pod="w-1",
                container="worker"),
         series("container_cpu_cfs_periods_total", "0+100x30", pod="w-1", container="worker")],
        [series("container_cpu_cfs_throttled_periods_total", "0+5x30", pod="w-1",
                container="worker"),
         series("container_cpu_cfs_periods_total", "0+100x30", pod="w-1", container="worker")],
        "20m", [{"pod": "w-1", "container": "worker"}]),
    "AgentQueueBacklog": Case(
        [series("research_queue_depth", "150x20", pod="w-1")],
        [series("research_queue_depth", "10x20", pod="w-1")], "15m"),
    "AgentQueueOldestRunTooOld": Case(
        [series("research_queue_oldest_age_seconds", "900x20", pod="w-1")],
        [series("research_queue_oldest_age_seconds", "30x20", pod="w-1")], "10m"),
    "AgentLlmErrorRatioHigh": Case(
        [series("llm_calls_total", "0+5x40", provider="openai", model="m", outcome="error"),
         series("llm_calls_total", "0+5x40", provider="openai", model="m", outcome="success")],
        [series("llm_calls_total", "0x40", provider="openai", model="m", outcome="error"),
         series("llm_calls_total", "0+5x40", provider="openai", model="m", outcome="success")],
        "25m", [{"provider": "openai"}]),
    "AgentLlmFailoverActive": Case(
        [series("llm_failovers_total", "0+1x20", from_provider="openai",
                to_provider="anthropic")],
        [series("llm_failovers_total", "0x20", from_provider="openai",
                to_provider="anthropic")],
        "10m", [{"from_provider": "openai", "to_provider": "anthropic"}]),
    "AgentLlmCostOverBudget": Case(
        # $0.50 a minute is $30 an hour, over the $10 budget; $0.05 a minute is $3.
        [series("agent_cost_usd_total", "0+0.5x90", provider="openai", model="m")],
        [series("agent_cost_usd_total", "0+0.05x90", provider="openai", model="m")], "80m"),
    "AgentLlmTokenBurnSpike": Case(
        # A day at 1 token/s, then 10 tokens/s for 40 minutes; the healthy day stays at 1.
        [series("llm_tokens_total", "0+60x1440 86460+600x40", provider="openai", model="m",
                type="output")],
        [series("llm_tokens_total", "0+60x1480", provider="openai", model="m",
                type="output")], "1475m"),
    "AgentPostgresUnreachable": Case(
        [series("dependency_up", "0x10", pod="api-1", dependency="postgres"),
         series("dependency_up", "0x10", pod="api-2", dependency="postgres")],
        # One pod that cannot reach Postgres leaves the Service; that is not an outage.
        [series("dependency_up", "0x10", pod="api-1", dependency="postgres"),
         series("dependency_up", "1x10", pod="api-2", dependency="postgres")], "5m"),
    "AgentRedisUnreachable": Case(
        [series("dependency_up", "0x10", pod="api-1", dependency="redis")],
        [series("dependency_up", "1x10", pod="api-1", dependency="redis")], "5m"),
    # The controller exports one series per Rollout with its phase as a label (honorLabels
    # keeps the Rollout's namespace).
    "AgentReleaseAborted": Case(
        [series("rollout_info", "1x10", name="agent-service-api", phase="Degraded",
                strategy="canary", traffic_router="ALB")],
        [series("rollout_info", "1x10", name="agent-service-api", phase="Healthy",
                strategy="canary", traffic_router="ALB")], "5m",
        [{"name": "agent-service-api"}]),
    "AgentReleaseWaitingForDecision": Case(
        [series("rollout_info", "1x30", name="agent-service-worker", phase="Paused",
                strategy="canary", traffic_router="")],
        [series("rollout_info", "1x30", name="agent-service-worker", phase="Progressing",
                strategy="canary", traffic_router="")], "20m",
        [{"name": "agent-service-worker"}]),
}


def rule_labels(alert: str, window: str | None) -> dict[str, str]:
    """The labels the rule itself adds (burn-rate rules: the one for that window)."""
    for group in GROUPS:
        for rule in group["rules"]:
            if rule.get("alert") == alert and rule["labels"].get("window") == window:
                return dict(rule["labels"])
    raise KeyError(alert)


def write_rules(directory: Path, *, annotations: bool = True) -> Path:
    groups = GROUPS
    if not annotations:
        # Annotations are templates over $value, which promtool would want spelled out;
        # the firing logic under test is the same without them.
        groups = [{**g, "rules": [{k: v for k, v in r.items() if k != "annotations"}
                                  for r in g["rules"]]} for g in GROUPS]
    path = directory / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def run_unit_tests(directory: Path, tests: list[dict[str, Any]]) -> None:
    write_rules(directory, annotations=False)
    path = directory / "tests.yml"
    path.write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m",
                                    "tests": tests}, sort_keys=False))
    result = subprocess.run([promtool(), "test", "rules", str(path)], capture_output=True,
                            text=True, timeout=60, check=False)
    if result.returncode != 0:
        pytest.fail(result.stdout + result.stderr)


def test_generated_rules_pass_promtool_check(tmp_path: Path) -> None:
    result = subprocess.run([promtool(), "check", "rules", str(write_rules(tmp_path))],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"alert": "Broken", "expr": "sum(rate(http_requests_total[5m])"}]}]}))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode != 0


def test_the_cases_use_the_production_thresholds() -> None:
    # The promtool cases prove the rules as prod ships them, not some other configuration.
    prod = settings_for("prod").monitoring.alerts
    assert replace(prod, runbook_url=THRESHOLDS.runbook_url) == THRESHOLDS


def test_every_alert_has_a_case() -> None:
    assert set(CASES) == alert_names(GROUPS)


@pytest.mark.parametrize("alert", sorted(CASES))
def test_alert_fires_on_bad_series_and_not_on_healthy_ones(tmp_path: Path, alert: str) -> None:
    case = CASES[alert]
    expected = [{"exp_labels": {**rule_labels(alert, labels.get("window")), **labels}}
                for labels in case.fires]
    run_unit_tests(tmp_path, [
        {"interval": "1m", "input_series": case.bad, "alert_rule_test": [
            {"eval_time": case.at, "alertname": alert, "exp_alerts": expected}]},
        {"interval": "1m", "input_series": case.good, "alert_rule_test": [
            {"eval_time": case.at, "alertname": alert, "exp_alerts": []}]},
    ])


def test_recording_rules_compute_the_slis(tmp_path: Path) -> None:
    run_unit_tests(tmp_path, [{
        "interval": "1m",
        "input_series": requests("0+75x30", "0+25x30") + histogram(spread("1.0", "0+60x30")),
        "promql_expr_test": [
            {"expr": 'agent:slo_errors:ratio_rate5m{slo="availability"}', "eval_time": "10m",
             "exp_samples": [{"labels": 'agent:slo_errors:ratio_rate5m{slo="availability"}',
                              "value": 0.25}]},
            {"expr": 'agent:slo_errors:ratio_rate1h{slo="latency"}', "eval_time": "10m",
             "exp_samples": [{"labels": 'agent:slo_errors:ratio_rate1h{slo="latency"}',
                              "value": 1}]},
        ]}])


def test_every_alert_links_to_a_runbook_section_that_exists() -> None:
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    headings = {line[3:].strip().lower() for line in runbooks.splitlines()
                if line.startswith("## ")}
    for group in GROUPS:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            url = rule["annotations"]["runbook_url"]
            assert url == f"{THRESHOLDS.runbook_url}#{runbook_anchor(rule['alert'])}"
            assert runbook_anchor(rule["alert"]) in headings, rule["alert"]
