"""Settings of the monitoring stack and of the service's alerts, read from the stack config."""

from __future__ import annotations

import re
from dataclasses import dataclass

from components.config.patterns import DNS_NAME, EMAIL, HTTP_URL, QUANTITY
from components.config.reader import ConfigReader

_DURATION = re.compile(r"^[1-9]\d*(h|d|w|y)$")
_HOST_PORT = re.compile(r"^[a-z0-9.-]+:\d{1,5}$")
_SLACK_CHANNEL = re.compile(r"^[#@][\w.-]{1,80}$")
RECEIVER_SECRETS = ("alertSlackWebhookUrl", "alertPagerdutyRoutingKey", "alertSmtpPassword")
# prometheus_client writes bucket bounds with Go's float formatting: 1 becomes "1.0".
LATENCY_BUCKET_LABELS = {"0.1": "0.1", "0.25": "0.25", "0.5": "0.5", "1": "1.0", "2.5": "2.5",
                         "5": "5.0", "10": "10.0"}


@dataclass(frozen=True)
class AlertThresholds:
    """What the rules compare against; every value comes from the stack config."""

    availability_target: float
    """Fraction of API requests that must not fail with 5xx, e.g. 0.999."""
    latency_target: float
    """Fraction of API requests that must finish within `latency_threshold`, e.g. 0.99."""
    latency_threshold: str
    """A histogram bucket bound in seconds, a key of LATENCY_BUCKET_LABELS."""
    error_ratio: float
    latency_p95_seconds: float
    latency_p99_seconds: float
    queue_depth: int
    queue_age_seconds: int
    llm_error_ratio: float
    llm_cost_usd_per_hour: float
    runbook_url: str
    """Base URL of docs/runbooks.md; each alert links to its own section."""


@dataclass(frozen=True)
class EmailSettings:
    to: str
    sender: str
    smarthost: str
    username: str | None


@dataclass(frozen=True)
class MonitoringSettings:
    enabled: bool
    replicas: int
    retention: str
    storage_size: str | None
    grafana_host: str | None
    slack_channel: str
    slack: bool
    """A Slack webhook URL is set (as a secret)."""
    pagerduty: bool
    """A PagerDuty routing key is set (as a secret)."""
    email: EmailSettings | None
    alerts: AlertThresholds
    grafana_domain: str | None = None
    """`grafanaDomainName`: Grafana's own name, certificate and DNS record (AWS)."""

    @property
    def has_receiver(self) -> bool:
        return self.slack or self.pagerduty or self.email is not None


def _percent(r: ConfigReader, key: str) -> float:
    """A target in percent, e.g. 99.9, as a fraction; 100 leaves no error budget."""
    value = r.number(key, 50, 99.999, "99.9")
    return round(value / 100, 6)


def _email(r: ConfigReader, secret_keys: frozenset[str]) -> EmailSettings | None:
    to = r.optional_string("alertEmailTo")
    sender = r.optional_string("alertEmailFrom")
    smarthost = r.optional_string("alertSmtpSmarthost")
    username = r.optional_string("alertSmtpUsername")
    if not (to or sender or smarthost or username):
        return None
    for key, value, pattern, shape in (
            ("alertEmailTo", to, EMAIL, "an address such as oncall@example.com"),
            ("alertEmailFrom", sender, EMAIL, "an address such as alerts@example.com"),
            ("alertSmtpSmarthost", smarthost, _HOST_PORT,
             "host:port such as smtp.example.com:587")):
        if not value:
            r.fail(key, None, "e-mail alerts need alertEmailTo, alertEmailFrom and "
                              "alertSmtpSmarthost together")
        elif not pattern.match(value):
            r.fail(key, value, f"expected {shape}")
    if username and "alertSmtpPassword" not in secret_keys:
        r.fail("alertSmtpPassword", None, "alertSmtpUsername is set, so set its password with "
                                          "`pulumi config set --secret alertSmtpPassword <pw>`")
    return EmailSettings(to or "", sender or "", smarthost or "", username)


def read_monitoring(r: ConfigReader, secret_keys: frozenset[str]) -> MonitoringSettings:
    """Reads the monitoring keys; `secret_keys` names the keys that were set as secrets."""
    for key in sorted((r.present_secret_keys & set(RECEIVER_SECRETS)) - secret_keys):
        r.fail(key, "[redacted]", "alert receiver credentials must be Pulumi secrets: "
                                  f"`pulumi config set --secret {key} <value>`")
    retention = r.matching("prometheusRetention", _DURATION, "a duration such as 15d")
    storage = r.optional_string("prometheusStorageSize")
    if storage and not QUANTITY.match(storage):
        r.fail("prometheusStorageSize", storage, "expected a size such as 50Gi, or empty")
    host = r.optional_matching("grafanaIngressHost", DNS_NAME,
                               "a lower-case DNS name such as grafana.example.com")
    grafana_domain = r.optional_matching("grafanaDomainName", DNS_NAME,
                                         "a lower-case DNS name such as grafana.example.com")
    if grafana_domain and host:
        r.fail("grafanaIngressHost", host, "with grafanaDomainName Grafana answers on "
                                           f"{grafana_domain}: leave it empty")
    channel = r.matching("alertSlackChannel", _SLACK_CHANNEL, "a channel such as #alerts")
    threshold = r.string("sloLatencyThresholdSeconds")
    if threshold not in LATENCY_BUCKET_LABELS:
        r.fail("sloLatencyThresholdSeconds", threshold,
               "must be a histogram bucket of the service: " + ", ".join(LATENCY_BUCKET_LABELS))
        threshold = "0.5"
    alerts = AlertThresholds(
        availability_target=_percent(r, "sloAvailabilityTarget"),
        latency_target=_percent(r, "sloLatencyTarget"),
        latency_threshold=threshold,
        error_ratio=r.number("alertErrorRatio", 0.001, 1, "0.05"),
        latency_p95_seconds=r.number("alertLatencyP95Seconds", 0.01, 600, "1"),
        latency_p99_seconds=r.number("alertLatencyP99Seconds", 0.01, 600, "2.5"),
        queue_depth=r.integer("alertQueueDepth", 1, 1_000_000),
        queue_age_seconds=r.integer("alertQueueAgeSeconds", 10, 86_400),
        llm_error_ratio=r.number("alertLlmErrorRatio", 0.001, 1, "0.1"),
        llm_cost_usd_per_hour=r.number("llmCostBudgetUsdPerHour", 0.01, 1_000_000, "10"),
        runbook_url=r.matching("runbookBaseUrl", HTTP_URL, "an http(s) URL"))
    return MonitoringSettings(
        enabled=r.boolean("monitoringEnabled"),
        replicas=r.integer("monitoringReplicas", 1, 5),
        retention=retention,
        storage_size=storage,
        grafana_host=host,
        grafana_domain=grafana_domain,
        slack_channel=channel,
        slack="alertSlackWebhookUrl" in r.present_secret_keys,
        pagerduty="alertPagerdutyRoutingKey" in r.present_secret_keys,
        email=_email(r, r.present_secret_keys),
        alerts=alerts,
    )
