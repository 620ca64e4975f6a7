"""Settings of distributed tracing, read from the stack config."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, cast

from components.config.patterns import HTTP_URL, QUANTITY
from components.config.reader import ConfigReader

Backend = Literal["jaeger", "otlp"]
_HEADER = re.compile(r"^[A-Za-z0-9-]{1,64}$")


@dataclass(frozen=True)
class TracingSettings:
    enabled: bool
    backend: Backend
    sample_ratio: float
    storage_size: str
    retention_hours: int
    otlp_endpoint: str | None
    otlp_auth_header: str | None


def read_tracing(r: ConfigReader, secret_keys: frozenset[str], monitoring: bool) -> TracingSettings:
    enabled = r.boolean("tracingEnabled")
    if enabled and not monitoring:
        r.fail("tracingEnabled", True, "tracing runs in the monitoring namespace: set "
                                       "monitoringEnabled to true, or tracingEnabled to false")
    backend = r.choice("tracingBackend", cast(tuple[Backend, ...], ("jaeger", "otlp")))
    ratio = r.number("tracingSampleRatio", 0, 1, "0.1")
    size = r.matching("tracingStorageSize", QUANTITY, "a size such as 20Gi")
    retention = r.integer("tracingRetentionHours", 1, 24 * 90)
    endpoint = r.optional_string("tracingOtlpEndpoint")
    if endpoint and not HTTP_URL.match(endpoint):
        r.fail("tracingOtlpEndpoint", endpoint, "expected an http(s) URL such as "
                                                "https://tempo.example.com:4318")
    if enabled and backend == "otlp" and not endpoint:
        r.fail("tracingOtlpEndpoint", None, "tracingBackend otlp forwards traces here; set it")
    header = r.optional_string("tracingOtlpAuthHeader")
    if header and not _HEADER.match(header):
        r.fail("tracingOtlpAuthHeader", header, "expected a header name such as authorization")
    token_set = "tracingOtlpAuthToken" in r.present_secret_keys
    if token_set and "tracingOtlpAuthToken" not in secret_keys:
        r.fail("tracingOtlpAuthToken", "[redacted]", "must be a Pulumi secret: `pulumi config "
                                                     "set --secret tracingOtlpAuthToken <token>`")
    if header and not token_set:
        r.fail("tracingOtlpAuthToken", None, f"tracingOtlpAuthHeader is {header}, so set its "
                                             "value with `pulumi config set --secret "
                                             "tracingOtlpAuthToken <token>`")
    return TracingSettings(enabled, backend, ratio, size, retention, endpoint, header)
