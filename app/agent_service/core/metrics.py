"""Prometheus metrics. With PROMETHEUS_MULTIPROC_DIR set (several server processes), values are
aggregated across processes at scrape time; otherwise the default registry is served."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
RUN_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests served",
                        ["method", "route", "status"])
HTTP_DURATION = Histogram("http_request_duration_seconds", "HTTP request latency",
                          ["method", "route"], buckets=LATENCY_BUCKETS)
RUNS = Counter("research_runs_total", "Research runs reaching a status", ["status"])
RUN_DURATION = Histogram("research_run_duration_seconds",
                         "Wall time from a run's start to its final status", buckets=RUN_BUCKETS)
QUEUE_DEPTH = Gauge("research_queue_depth", "Runs waiting in the queue",
                    multiprocess_mode="max")
QUEUE_OLDEST_AGE = Gauge("research_queue_oldest_age_seconds", "Age of the oldest queued run",
                         multiprocess_mode="max")
LLM_CALLS = Counter("llm_calls_total", "LLM calls by outcome", ["provider", "model", "outcome"])
LLM_TOKENS = Counter("llm_tokens_total", "LLM tokens", ["provider", "model", "type"])
LLM_ERRORS = Counter("llm_errors_total", "LLM call errors", ["provider", "model", "reason"])
LLM_DURATION = Histogram("llm_request_duration_seconds", "LLM call latency",
                         ["provider", "model"], buckets=LATENCY_BUCKETS)
LLM_COST = Counter("agent_cost_usd_total", "LLM spend in USD", ["provider", "model"])
LLM_CACHE_HITS = Counter("llm_cache_hits_total", "LLM responses served from the cache",
                         ["provider", "model"])
DEPENDENCY_UP = Gauge("dependency_up",
                      "1 if this process's last /ready check of the dependency passed, else 0",
                      ["dependency"], multiprocess_mode="livemin")
LLM_FAILOVERS = Counter("llm_failovers_total", "Calls handed to the next provider",
                        ["from_provider", "to_provider"])


def exposition() -> tuple[bytes, str]:
    """The scrape body and content type for this process (or all of them, multiprocess)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
