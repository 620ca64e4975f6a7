"""How a canary is judged: Prometheus queries over the service's own metrics, canary against
stable, and the verdict each one gives.

Read like the alert rules (observability/alert_rules.py): tests/test_monitoring_live.py checks
every metric named here is one the running service exports, so a rename fails a test, not a
release.
The pods' `rollouts-pod-template-hash` label reaches the series as `rollouts_pod_template_hash`
(the ServiceMonitor's and PodMonitor's podTargetLabels); Argo fills `{{args.canary-hash}}` and
`{{args.stable-hash}}` in.

Every query returns nothing when the canary saw too little traffic in the window (`and on()` a
minimum), and a verdict needs a value: an empty result is Inconclusive, which pauses the rollout
for a person, never a pass. Each verdict is `value <= limit` passes, `value > limit` fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.config.delivery import CanaryThresholds

HASH_LABEL = "rollouts-pod-template-hash"
"""The pod label Argo Rollouts gives each version's pods."""
RELEASE_LABEL = "rollouts_pod_template_hash"
"""The same, on the series (the monitors' podTargetLabels)."""
CANARY = f'{RELEASE_LABEL}="{{{{args.canary-hash}}}}"'
STABLE = f'{RELEASE_LABEL}="{{{{args.stable-hash}}}}"'
_API = 'route=~"/api/.*"'
# The event stream stays open for a run's whole life; it has no meaningful latency.
_TIMED = 'route=~"/api/.*",route!~".*/events"'
_5XX = 'status=~"5.."'
_FAILED = 'status="failed"'
_SUCCEEDED = 'status="succeeded"'
_FINISHED = 'status=~"succeeded|failed"'
_LLM_ERROR = 'outcome="error"'


@dataclass(frozen=True)
class CanaryCheck:
    name: str
    query: str
    limit: float
    """The largest value that passes."""
    summary: str

    @property
    def success_condition(self) -> str:
        return f"len(result) > 0 && result[0] <= {self.limit:g}"

    @property
    def failure_condition(self) -> str:
        # NaN (a ratio over nothing) satisfies neither: Inconclusive.
        return f"len(result) > 0 && result[0] > {self.limit:g}"

    def verdict(self, result: list[float]) -> str:
        """What Argo Rollouts decides for a query result (utils/evaluate of the release)."""
        if result and result[0] > self.limit:
            return "Failed"
        if result and result[0] <= self.limit:
            return "Successful"
        return "Inconclusive"


def _sel(namespace: str, *matchers: str) -> str:
    return "{" + ",".join((f'namespace="{namespace}"', *matchers)) + "}"


def _share(part: str, whole: str, enough: str) -> str:
    """part / whole: 0 when the part has no series yet (nothing failed), nothing at all when the
    canary saw too little (`enough`)."""
    return f"({part} or on() vector(0))\n/ {whole}\n{enough}"


def api_checks(namespace: str, window: str, t: CanaryThresholds) -> list[CanaryCheck]:
    def rate(metric: str, *matchers: str) -> str:
        return f"sum(rate({metric}{_sel(namespace, *matchers)}[{window}]))"

    enough = (f"and on() sum(increase(http_requests_total{_sel(namespace, _API, CANARY)}"
              f"[{window}])) >= {t.min_requests}")

    def p95(track: str) -> str:
        return (f"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket"
                f"{_sel(namespace, _TIMED, track)}[{window}])))")

    return [
        CanaryCheck(
            "api-error-ratio",
            _share(rate("http_requests_total", _API, _5XX, CANARY),
                   rate("http_requests_total", _API, CANARY), enough),
            t.max_error_ratio, "share of the canary's API requests answering 5xx"),
        CanaryCheck(
            "api-latency-p95-ratio", f"{p95(CANARY)}\n/ {p95(STABLE)}\n{enough}",
            t.max_latency_ratio, "the canary's p95 latency over the stable version's"),
    ]


def worker_checks(namespace: str, window: str, t: CanaryThresholds) -> list[CanaryCheck]:
    def increase(metric: str, *matchers: str) -> str:
        return f"sum(increase({metric}{_sel(namespace, *matchers)}[{window}]))"

    enough = f"and on() {increase('research_runs_total', _FINISHED, CANARY)} >= {t.min_runs}"

    def tokens_per_run(track: str) -> str:
        return (f"({increase('llm_tokens_total', track)}\n / "
                f"{increase('research_runs_total', _SUCCEEDED, track)})")

    return [
        CanaryCheck(
            "run-failure-ratio",
            _share(increase("research_runs_total", _FAILED, CANARY),
                   increase("research_runs_total", _FINISHED, CANARY), enough),
            t.max_run_failure_ratio, "share of the canary's research runs that failed"),
        CanaryCheck(
            "llm-error-ratio",
            _share(increase("llm_calls_total", _LLM_ERROR, CANARY),
                   increase("llm_calls_total", CANARY), enough),
            t.max_llm_error_ratio, "share of the canary's LLM calls that failed"),
        CanaryCheck(
            "spend-per-run-ratio",
            f"{tokens_per_run(CANARY)}\n/ {tokens_per_run(STABLE)}\n{enough}",
            t.max_spend_ratio, "the canary's LLM tokens per run over the stable version's"),
    ]
