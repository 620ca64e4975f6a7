"""Grafana dashboards for the agent service, built with grafana-foundation-sdk's typed builders.

Three dashboards: the service overview (traffic, errors, latency, pods, autoscaling), LLM usage
(calls, tokens, cost, errors, cache, failovers) and the run queue. Panels read the recording rules
of observability/alert_rules.py where one exists, so the dashboards and the alerts agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from components.kubernetes.service.canary_checks import RELEASE_LABEL

# kube-prometheus-stack provisions its Prometheus data source with this uid
# (components/monitoring.py sets it explicitly).
DATASOURCE_UID = "prometheus"
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class PanelSpec:
    title: str
    unit: str
    queries: tuple[Query, ...]
    stat: bool = False
    description: str = ""


def _panel(spec: PanelSpec) -> Stat | Timeseries:
    datasource = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
    panel: Stat | Timeseries = Stat() if spec.stat else Timeseries()
    panel = panel.title(spec.title).unit(spec.unit).datasource(datasource) \
        .span(6 if spec.stat else 12).height(4 if spec.stat else 8)
    if spec.description:
        panel = panel.description(spec.description)
    for index, query in enumerate(spec.queries):
        target = Dataquery().expr(query.expr).ref_id(chr(ord("A") + index)).datasource(
            datasource)
        if query.legend:
            target = target.legend_format(query.legend)
        panel = panel.with_target(target)
    return panel


def _dashboard(uid: str, title: str, rows: Sequence[tuple[str, Sequence[PanelSpec]]]) -> str:
    builder = Dashboard(title).uid(uid).tags(["agent-platform", "generated"]).refresh("30s") \
        .time("now-6h", "now").editable()
    for row, panels in rows:
        builder = builder.with_row(Row(row))
        for spec in panels:
            builder = builder.with_panel(_panel(spec))
    return str(JSONEncoder(sort_keys=True, indent=2).encode(builder.build()))


def _service(s: str) -> list[tuple[str, list[PanelSpec]]]:
    return [
        ("Now", [
            PanelSpec("Requests/s", "reqps", (Query(
                f'sum(rate(http_requests_total{{{s},route=~"/api/.*"}}[{RATE}]))'),), stat=True),
            PanelSpec("5xx ratio (5m)", "percentunit", (Query(
                'agent:slo_errors:ratio_rate5m{slo="availability"}'),), stat=True),
            PanelSpec("p95 latency", "s", (Query(
                "agent:http_request_duration_seconds:p95_rate5m"),), stat=True),
            PanelSpec("Ready API pods", "short", (Query(
                f'sum(kube_pod_status_ready{{{s},condition="true",'
                f'pod=~"agent-service-api-.*"}})'),), stat=True),
        ]),
        ("Traffic and errors", [
            PanelSpec("Requests/s by route", "reqps", (Query(
                f'sum by (route) (rate(http_requests_total{{{s},route=~"/api/.*"}}[{RATE}]))',
                "{{route}}"),)),
            PanelSpec("Responses/s by status", "reqps", (Query(
                f"sum by (status) (rate(http_requests_total{{{s}}}[{RATE}]))", "{{status}}"),)),
            PanelSpec("Error ratio by SLO window", "percentunit", tuple(
                Query(f'agent:slo_errors:ratio_rate{w}{{slo="availability"}}', w)
                for w in ("5m", "1h", "6h"))),
            PanelSpec("Latency p50 / p95 / p99", "s", tuple(
                Query(f"agent:http_request_duration_seconds:{q}_rate5m", q)
                for q in ("p50", "p95", "p99"))),
        ]),
        ("Capacity", [
            PanelSpec("Pods ready", "short", (Query(
                f'sum by (pod) (kube_pod_status_ready{{{s},condition="true"}})', "{{pod}}"),)),
            PanelSpec("Autoscaler replicas", "short", (
                Query(f"kube_horizontalpodautoscaler_status_current_replicas{{{s}}}",
                      "{{horizontalpodautoscaler}} current"),
                Query(f"kube_horizontalpodautoscaler_spec_max_replicas{{{s}}}",
                      "{{horizontalpodautoscaler}} max"))),
            PanelSpec("Dependencies up (per API process)", "short", (Query(
                f"min by (dependency) (dependency_up{{{s}}})", "{{dependency}}"),),
                description="1 when every API pod's last /ready check of it passed."),
        ]),
        ("Releases", _releases(s)),
    ]


def _releases(s: str) -> list[PanelSpec]:
    """Canary beside stable during a release: each line is one version (pod-template hash)."""
    by = f"by ({RELEASE_LABEL})"
    api = f'{s},route=~"/api/.*"'
    legend = f"{{{{{RELEASE_LABEL}}}}}"
    return [
        PanelSpec("5xx ratio by release", "percentunit", (Query(
            f'sum {by} (rate(http_requests_total{{{api},status=~"5.."}}[{RATE}])) / '
            f"sum {by} (rate(http_requests_total{{{api}}}[{RATE}]))", legend),),
            description="Empty outside a canary release, or when nothing failed."),
        PanelSpec("p95 latency by release", "s", (Query(
            f"histogram_quantile(0.95, sum by (le, {RELEASE_LABEL}) "
            f'(rate(http_request_duration_seconds_bucket{{{api},route!~".*/events"}}'
            f"[{RATE}])))", legend),)),
        PanelSpec("LLM tokens per finished run by release", "short", (Query(
            f"sum {by} (increase(llm_tokens_total{{{s}}}[15m])) / "
            f'sum {by} (increase(research_runs_total{{{s},status="succeeded"}}[15m]))',
            legend),)),
    ]


def _llm(s: str) -> list[tuple[str, list[PanelSpec]]]:
    calls = f"sum(rate(llm_calls_total{{{s}}}[{RATE}]))"
    hits = f"sum(rate(llm_cache_hits_total{{{s}}}[{RATE}]))"
    return [
        ("Calls", [
            PanelSpec("Calls/s by provider and outcome", "reqps", (Query(
                f"sum by (provider, outcome) (rate(llm_calls_total{{{s}}}[{RATE}]))",
                "{{provider}} {{outcome}}"),)),
            PanelSpec("Errors/s by reason", "reqps", (Query(
                f"sum by (provider, reason) (rate(llm_errors_total{{{s}}}[{RATE}]))",
                "{{provider}} {{reason}}"),)),
            PanelSpec("Call latency p95", "s", (Query(
                "histogram_quantile(0.95, sum by (le, provider) "
                f"(rate(llm_request_duration_seconds_bucket{{{s}}}[{RATE}])))",
                "{{provider}}"),)),
            PanelSpec("Failovers/s", "reqps", (Query(
                "sum by (from_provider, to_provider) "
                f"(rate(llm_failovers_total{{{s}}}[{RATE}]))",
                "{{from_provider}} → {{to_provider}}"),)),
        ]),
        ("Tokens and cost", [
            PanelSpec("Tokens/s by model and type", "short", (Query(
                f"sum by (model, type) (rate(llm_tokens_total{{{s}}}[{RATE}]))",
                "{{model}} {{type}}"),)),
            PanelSpec("Cost per hour by model (USD)", "currencyUSD", (Query(
                "agent:llm_cost_usd:increase1h", "{{provider}} {{model}}"),)),
            PanelSpec("Cache hit ratio", "percentunit", (Query(
                f"{hits} / ({hits} + {calls})"),), stat=True),
            PanelSpec("Spend today (USD)", "currencyUSD", (Query(
                f"sum(increase(agent_cost_usd_total{{{s}}}[1d]))"),), stat=True),
        ]),
    ]


def _queue(s: str) -> list[tuple[str, list[PanelSpec]]]:
    return [
        ("Queue", [
            PanelSpec("Queued runs", "short", (Query(f"max(research_queue_depth{{{s}}})"),),
                      stat=True),
            PanelSpec("Oldest queued run", "s", (Query(
                f"max(research_queue_oldest_age_seconds{{{s}}})"),), stat=True),
            PanelSpec("Workers up", "short", (Query(
                f'sum(up{{{s},container="worker"}})'),), stat=True),
            PanelSpec("Queue depth and oldest age", "short", (
                Query(f"max(research_queue_depth{{{s}}})", "depth"),
                Query(f"max(research_queue_oldest_age_seconds{{{s}}})", "oldest age (s)"))),
        ]),
        ("Runs", [
            PanelSpec("Runs finished/s by status", "short", (Query(
                f"sum by (status) (rate(research_runs_total{{{s}}}[{RATE}]))", "{{status}}"),)),
            PanelSpec("Run duration p50 / p95", "s", tuple(
                Query(f"histogram_quantile({q}, sum by (le) "
                      f"(rate(research_run_duration_seconds_bucket{{{s}}}[{RATE}])))", f"p{p}")
                for q, p in (("0.5", "50"), ("0.95", "95")))),
        ]),
    ]


def dashboards(namespace: str) -> dict[str, str]:
    """Dashboard JSON documents keyed by file name, for the Grafana sidecar."""
    s = f'namespace="{namespace}"'
    return {
        "agent-service-overview.json": _dashboard("agent-service-overview",
                                                  "Agent service / Overview", _service(s)),
        "agent-service-llm.json": _dashboard("agent-service-llm", "Agent service / LLM",
                                             _llm(s)),
        "agent-service-queue.json": _dashboard("agent-service-queue", "Agent service / Queue",
                                               _queue(s)),
    }
