"""The platform and the service agree: the component and the rules restate some of the service's
facts (ports, queue, environment names, histogram buckets, metrics), because the Pulumi program
does not import the service's code. These tests read both sides."""

from __future__ import annotations

import inspect
from typing import Any

from prometheus_client.utils import floatToGoString

from agent_service.cli import KEEP_ALIVE_SECONDS, api
from agent_service.core.config import Settings
from agent_service.core.metrics import LATENCY_BUCKETS
from agent_service.jobs.queue import ResilientRedisQueue, make_queue
from components.config.monitoring import LATENCY_BUCKET_LABELS
from components.kubernetes.alb import ALB_IDLE_TIMEOUT_SECONDS, alb_annotations
from components.kubernetes.service.context import (
    API_PORT,
    QUEUE_NAME,
    QUEUED_LIST,
    WORKER_METRICS_PORT,
)
from harness import Rendered


def test_ports_and_queue_are_the_services_defaults() -> None:
    defaults = Settings(environment="development")
    assert defaults.worker_metrics_port == WORKER_METRICS_PORT
    assert defaults.queue_name == QUEUE_NAME
    # SAQ's list of waiting job ids, which KEDA measures.
    queue = make_queue(defaults)
    assert isinstance(queue, ResilientRedisQueue)
    assert queue.namespace("queued") == QUEUED_LIST
    assert inspect.signature(api).parameters["port"].default == API_PORT


def test_the_api_keeps_idle_connections_longer_than_the_load_balancer() -> None:
    """The ALB closes idle connections to the pods, never the pods under a request the ALB is
    sending (which it would answer with a 502)."""
    attributes = str(alb_annotations("internal", None, {})[
        "alb.ingress.kubernetes.io/load-balancer-attributes"])
    assert f"idle_timeout.timeout_seconds={ALB_IDLE_TIMEOUT_SECONDS}" in attributes
    assert KEEP_ALIVE_SECONDS > ALB_IDLE_TIMEOUT_SECONDS


def test_slo_thresholds_are_histogram_buckets_of_the_service() -> None:
    buckets = {floatToGoString(b) for b in LATENCY_BUCKETS}  # type: ignore[no-untyped-call]
    for seconds, label in LATENCY_BUCKET_LABELS.items():
        assert label in buckets, seconds
        assert float(seconds) == float(label)


def test_every_config_map_key_is_a_service_setting(stacks: dict[str, Rendered]) -> None:
    fields = {name.upper() for name in Settings.model_fields}
    # Read by the OpenTelemetry SDK itself rather than by the settings.
    sdk = {"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"}
    for stack, rendered in stacks.items():
        (config,) = [c.inputs["data"] for c in rendered.of_type("kubernetes:core/v1:ConfigMap")
                     if c.name == "agent-config"]
        unknown = set(config) - fields - sdk
        assert not unknown, (stack, unknown)


def test_every_secret_key_is_a_service_setting(stacks: dict[str, Any]) -> None:
    fields = {name.upper() for name in Settings.model_fields}
    # KEDA reads the Redis password from the worker's environment, not the service.
    for stack, rendered in stacks.items():
        (secret,) = [s.inputs["stringData"] for s in rendered.of_type("kubernetes:core/v1:Secret")
                     if s.name == "agent-secrets"]
        assert set(secret) - fields == {"REDIS_PASSWORD"}, stack
