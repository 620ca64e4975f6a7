"""Recording and alerting rules for the agent service, defined once in Python.

The same groups become the cluster's PrometheusRule (observability/monitoring.py) and the file the
tests hand to `promtool` and to a live Prometheus. SLO alerts follow the multi-window,
multi-burn-rate pattern of the Google SRE workbook (chapter "Alerting on SLOs"): each alert needs
both a long and a short window to burn the error budget faster than its factor, so it fires
quickly on a real outage and resets quickly once it is over.
"""

from __future__ import annotations

import re
from typing import Any

from components.config.monitoring import LATENCY_BUCKET_LABELS, AlertThresholds
from components.observability.alert import Alert
from components.observability.release_alerts import release_alerts

# (name, long window, short window, burn factor, for, severity)
BURN_RATE_ALERTS = (
    ("page-fast", "1h", "5m", 14.4, "2m", "critical"),
    ("page-slow", "6h", "30m", 6.0, "15m", "critical"),
    ("ticket-fast", "1d", "2h", 3.0, "1h", "warning"),
    ("ticket-slow", "3d", "6h", 1.0, "3h", "warning"),
)
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# The event stream stays open for a run's whole life; it has no meaningful latency.
_API_ROUTES = 'route=~"/api/.*"'
_TIMED_ROUTES = 'route=~"/api/.*",route!~".*/events"'


def runbook_anchor(alert_name: str) -> str:
    """GitHub's anchor for a `## AlertName` heading."""
    return alert_name.lower()


class _Rules:
    def __init__(self, t: AlertThresholds, namespace: str) -> None:
        self.t = t
        self.namespace = namespace
        ns = f'namespace="{namespace}"'

        def sel(*matchers: str) -> str:
            return "{" + ",".join((ns, *matchers)) + "}"

        self.sel = sel
        self.any = sel()
        self.api = sel(_API_ROUTES)
        self.api_5xx = sel(_API_ROUTES, 'status=~"5.."')
        self.timed = sel(_TIMED_ROUTES)
        self.fast = sel(_TIMED_ROUTES, f'le="{LATENCY_BUCKET_LABELS[t.latency_threshold]}"')
        self.containers = sel('container=~"api|worker"')
        self.memory_limits = sel('container=~"api|worker"', 'resource="memory"')

    # --- recording rules --------------------------------------------------------------------

    def recordings(self) -> list[dict[str, Any]]:
        rules = []
        for w in SLO_WINDOWS:
            requests = f"sum(rate(http_requests_total{self.api}[{w}]))"
            errors = f"sum(rate(http_requests_total{self.api_5xx}[{w}]))"
            rules.append({"record": f"agent:slo_errors:ratio_rate{w}",
                          "expr": f"{errors} / {requests}",
                          "labels": {"slo": "availability"}})
            fast = f"sum(rate(http_request_duration_seconds_bucket{self.fast}[{w}]))"
            total = f"sum(rate(http_request_duration_seconds_count{self.timed}[{w}]))"
            rules.append({"record": f"agent:slo_errors:ratio_rate{w}",
                          "expr": f"1 - ({fast} / {total})",
                          "labels": {"slo": "latency"}})
        for name, q in (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99")):
            rules.append({
                "record": f"agent:http_request_duration_seconds:{name}_rate5m",
                "expr": f"histogram_quantile({q}, sum by (le) "
                        f"(rate(http_request_duration_seconds_bucket{self.timed}[5m])))"})
        rules.append({"record": "agent:http_requests:rate5m",
                      "expr": f"sum by (route, status) (rate(http_requests_total{self.api}[5m]))"})
        rules.append({"record": "agent:llm_cost_usd:increase1h",
                      "expr": f"sum by (provider, model) "
                              f"(increase(agent_cost_usd_total{self.any}[1h]))"})
        return rules

    # --- alerts -----------------------------------------------------------------------------

    def burn_rate_alerts(self) -> list[Alert]:
        alerts = []
        for slo, target, name, what in (
                ("availability", self.t.availability_target, "AgentApiAvailabilityBudgetBurn",
                 "API requests failing with 5xx"),
                ("latency", self.t.latency_target, "AgentApiLatencyBudgetBurn",
                 f"API requests slower than {self.t.latency_threshold}s")):
            budget = round(1 - target, 6)
            for window, long, short, factor, for_, severity in BURN_RATE_ALERTS:
                threshold = round(factor * budget, 6)
                expr = (f'agent:slo_errors:ratio_rate{long}{{slo="{slo}"}} > {threshold}\n'
                        f'and\nagent:slo_errors:ratio_rate{short}{{slo="{slo}"}} > {threshold}')
                alerts.append(Alert(
                    name, expr, for_, severity,
                    f"The {slo} SLO's error budget is burning {factor:g}x too fast",
                    f"{what} over {long} and {short} exceed {factor:g}x the budget of a "
                    f"{target:.2%} SLO ({{{{ $value | humanizePercentage }}}} over {short}). "
                    f"At this rate the 30-day budget lasts {30 / factor:.1f} days.",
                    labels=(("slo", slo), ("window", window))))
        return alerts

    def service_alerts(self) -> list[Alert]:
        return self._availability() + self._pods() + self._queue() + self._llm() + \
            self._datastores() + release_alerts(self.namespace)

    def _availability(self) -> list[Alert]:
        t = self.t
        return [
            Alert("AgentApiErrorRatioHigh",
                  f'agent:slo_errors:ratio_rate5m{{slo="availability"}} > {t.error_ratio}', "5m",
                  "critical", f"More than {t.error_ratio:.0%} of API requests fail",
                  "{{ $value | humanizePercentage }} of API requests answered 5xx over 5 "
                  "minutes."),
            Alert("AgentApiLatencyP95High",
                  f"agent:http_request_duration_seconds:p95_rate5m > {t.latency_p95_seconds}",
                  "10m", "warning", "API p95 latency is high",
                  "p95 latency is {{ $value | humanizeDuration }} (threshold "
                  f"{t.latency_p95_seconds}s)."),
            Alert("AgentApiLatencyP99High",
                  f"agent:http_request_duration_seconds:p99_rate5m > {t.latency_p99_seconds}",
                  "10m", "warning", "API p99 latency is high",
                  "p99 latency is {{ $value | humanizeDuration }} (threshold "
                  f"{t.latency_p99_seconds}s)."),
            Alert("AgentApiTargetsDown", "absent(up" + self.sel('container="api"') + " == 1)",
                  "5m",
                  "critical", "No API pod is being scraped successfully",
                  f"Prometheus has no healthy API target in {self.namespace}: the API is down or "
                  "its ServiceMonitor no longer matches."),
        ]

    def _pods(self) -> list[Alert]:
        ready = self.sel('condition="true"')
        live = self.sel('phase=~"Running|Pending"')
        crash = self.sel('reason="CrashLoopBackOff"')
        return [
            Alert("AgentWorkersAbsent", "absent(up" + self.sel('container="worker"') + " == 1)",
                  "5m", "critical", "No worker is running",
                  "No worker pod answers on its metrics port: queued runs are not being "
                  "processed."),
            Alert("AgentPodsNotReady",
                  f"(kube_pod_status_ready{ready} == 0) and on (namespace, pod) "
                  f"(kube_pod_status_phase{live} == 1)", "10m", "warning",
                  "Pod {{ $labels.pod }} is not ready",
                  "{{ $labels.pod }} has been running but not ready for 10 minutes."),
            Alert("AgentPodCrashLooping",
                  "max by (pod, container) "
                  f"(kube_pod_container_status_waiting_reason{crash}) == 1", "5m", "critical",
                  "{{ $labels.pod }} is crash looping",
                  "Container {{ $labels.container }} of {{ $labels.pod }} keeps restarting."),
            Alert("AgentHpaAtMaximum",
                  f"kube_horizontalpodautoscaler_status_current_replicas{self.any} >= on "
                  "(namespace, horizontalpodautoscaler) "
                  f"kube_horizontalpodautoscaler_spec_max_replicas{self.any}", "15m",
                  "warning", "{{ $labels.horizontalpodautoscaler }} is at its maximum",
                  "The autoscaler has run at maxReplicas for 15 minutes: raise the maximum "
                  "or the node capacity."),
            Alert("AgentPodMemoryNearLimit",
                  "max by (pod, container) "
                  f"(container_memory_working_set_bytes{self.containers}) / max by (pod, "
                  f"container) (kube_pod_container_resource_limits{self.memory_limits}) > 0.9",
                  "15m", "warning", "{{ $labels.pod }} is near its memory limit",
                  "{{ $labels.container }} uses {{ $value | humanizePercentage }} of its "
                  "memory limit; the next spike is an OOM kill."),
            Alert("AgentPodCpuThrottled",
                  "sum by (pod, container) "
                  f"(rate(container_cpu_cfs_throttled_periods_total{self.containers}[5m])) / "
                  "sum by (pod, container) "
                  f"(rate(container_cpu_cfs_periods_total{self.containers}[5m])) > 0.25",
                  "15m", "warning", "{{ $labels.pod }} is CPU throttled",
                  "{{ $value | humanizePercentage }} of CPU periods are throttled."),
        ]

    def _queue(self) -> list[Alert]:
        t = self.t
        return [
            Alert("AgentQueueBacklog",
                  f"max(research_queue_depth{self.any}) > {t.queue_depth}", "10m", "warning",
                  "Research runs are piling up",
                  f"{{{{ $value }}}} runs are waiting (threshold {t.queue_depth})."),
            Alert("AgentQueueOldestRunTooOld",
                  f"max(research_queue_oldest_age_seconds{self.any}) > {t.queue_age_seconds}",
                  "5m", "critical", "The oldest queued run has waited too long",
                  "The oldest queued run has waited {{ $value | humanizeDuration }} "
                  f"(threshold {t.queue_age_seconds}s)."),
        ]

    def _llm(self) -> list[Alert]:
        t = self.t
        failed = self.sel('outcome="error"')
        tokens_15m = f"sum(rate(llm_tokens_total{self.any}[15m]))"
        return [
            Alert("AgentLlmErrorRatioHigh",
                  f"sum by (provider) (rate(llm_calls_total{failed}[10m])) / sum by (provider) "
                  f"(rate(llm_calls_total{self.any}[10m])) > {t.llm_error_ratio}", "10m",
                  "warning", "LLM provider {{ $labels.provider }} is failing",
                  "{{ $value | humanizePercentage }} of calls to {{ $labels.provider }} fail."),
            Alert("AgentLlmFailoverActive",
                  "sum by (from_provider, to_provider) "
                  f"(increase(llm_failovers_total{self.any}[10m])) > 0", "5m", "warning",
                  "Calls fail over from {{ $labels.from_provider }} to "
                  "{{ $labels.to_provider }}",
                  "The primary provider is failing or cooling down; answers come from the "
                  "fallback."),
            Alert("AgentLlmCostOverBudget",
                  f"sum(increase(agent_cost_usd_total{self.any}[1h])) > "
                  f"{t.llm_cost_usd_per_hour}", "10m", "warning",
                  "LLM spend is above the hourly budget",
                  'The last hour cost ${{ $value | printf "%.2f" }} (budget '
                  f"${t.llm_cost_usd_per_hour:g}/hour)."),
            Alert("AgentLlmTokenBurnSpike",
                  f"{tokens_15m} > 3 * sum(rate(llm_tokens_total{self.any}[1d]))\n"
                  f"and\n{tokens_15m} > 1", "15m", "warning",
                  "Token use is 3x its daily average",
                  "Tokens per second over 15 minutes are more than three times the last day's "
                  "average: a loop, an abusive key or a prompt change."),
        ]

    def _datastores(self) -> list[Alert]:
        return [
            Alert("AgentPostgresUnreachable",
                  "max(dependency_up" + self.sel('dependency="postgres"') + ") == 0", "2m",
                  "critical", "No API pod can use Postgres",
                  "/ready fails on Postgres in every API pod (unreachable, or the schema is "
                  "not at the latest migration)."),
            Alert("AgentRedisUnreachable",
                  "max(dependency_up" + self.sel('dependency="redis"') + ") == 0", "2m",
                  "critical", "No API pod can reach Redis",
                  "/ready fails on Redis in every API pod: rate limits (so submissions) and the "
                  "LLM cache are down; saved runs are queued once it is back."),
        ]


def rule_groups(t: AlertThresholds, namespace: str) -> list[dict[str, Any]]:
    """The groups of a PrometheusRule spec (also a valid `promtool` rule file's `groups`) for
    the service running in `namespace`."""
    rules = _Rules(t, namespace)

    def as_rule(alert: Alert) -> dict[str, Any]:
        return {
            "alert": alert.name, "expr": alert.expr, "for": alert.for_,
            "labels": {"severity": alert.severity, "service": "agent-service",
                       **dict(alert.labels)},
            "annotations": {"summary": alert.summary, "description": alert.description,
                            "runbook_url": f"{t.runbook_url}#{runbook_anchor(alert.name)}"},
        }

    return [
        {"name": "agent-service.slo.recording", "interval": "30s", "rules": rules.recordings()},
        {"name": "agent-service.slo.alerts", "rules": [as_rule(a)
                                                       for a in rules.burn_rate_alerts()]},
        {"name": "agent-service.alerts", "rules": [as_rule(a) for a in rules.service_alerts()]},
    ]


def alert_names(groups: list[dict[str, Any]]) -> set[str]:
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


# A metric name stands alone: recording rules (`agent:...:rate5m`) contain names but are not.
_SERVICE_METRIC = re.compile(r"(?<![\w:])((?:http|research|llm|agent_cost|dependency)_[a-z_]+)"
                             r"(?![\w:])")
_HISTOGRAM_SUFFIX = re.compile(r"_(bucket|count|sum)$")


def service_metrics_in(expr: str) -> set[str]:
    """Names of the service's own metrics an expression reads (histogram series folded)."""
    return {_HISTOGRAM_SUFFIX.sub("", name) for name in _SERVICE_METRIC.findall(expr)}
