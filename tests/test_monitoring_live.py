"""The monitoring definitions against the real thing: the service (API and worker processes on
real Postgres and Redis) scraped by a real Prometheus server loaded with the generated rules.

One module-scoped run: healthy traffic first (runs that fail over from an unreachable OpenAI
endpoint to the offline provider, so LLM error and failover series exist), then Redis is shut
down and the API answers 5xx, as it would in an outage. The tests then read Prometheus's HTTP
API. Every wait is bounded; everything started is stopped.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import redis
import yaml
from devtools.servers import (
    APP_DIR,
    free_port,
    postgres_server,
    redis_server,
    service_env,
    stop_process,
    wait_until_ready,
)
from promtool import prometheus
from test_alert_rules import GROUPS
from test_config import settings_for

from components.kubernetes.service.canary_checks import api_checks, worker_checks
from components.observability.alert_rules import service_metrics_in
from components.observability.dashboards import dashboards

NAMESPACE = "agent-service"
CANARY_THRESHOLDS = settings_for("prod").delivery.thresholds
QUESTION = "How does the platform deploy the agent service?"
DOCUMENT = {"title": "Deployment", "source": "docs",
            "content": "The platform deploys the agent service with Pulumi onto Kubernetes. "
                       "Workers process research runs from a Redis queue."}
T = TypeVar("T")

pytestmark = pytest.mark.timeout(240)


@dataclass
class Live:
    prometheus: str
    api: str
    worker_metrics: str
    metrics_text: str
    """The API's and the worker's /metrics after the healthy traffic."""


def until(condition: Callable[[], T | None], seconds: float, what: str) -> T:
    """Polls `condition` until it returns something truthy; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {seconds}s waiting for {what}")
        time.sleep(0.5)


@contextlib.contextmanager
def started(args: list[str], env: dict[str, str], log: Path,
            ready_url: str | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(args, env=env, cwd=APP_DIR, stdout=out, stderr=out)
        try:
            if ready_url:
                wait_until_ready(ready_url, process, 60)
            yield process
        finally:
            stop_process(process, 20)


def prometheus_config(directory: Path, api_port: int, worker_port: int) -> Path:
    # Rules evaluate every second here so a short test sees them; the logic is unchanged.
    groups = [{**group, "interval": "1s"} for group in GROUPS]
    (directory / "rules.yml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))

    def target(port: int, container: str) -> dict[str, Any]:
        # The labels the Prometheus Operator's monitors put on the service's targets.
        return {"targets": [f"127.0.0.1:{port}"], "labels": {
            "namespace": NAMESPACE, "container": container,
            "pod": f"agent-service-{container}-0"}}

    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yml"],
        "scrape_configs": [
            {"job_name": "agent-service-api", "static_configs": [target(api_port, "api")]},
            {"job_name": "agent-service-worker",
             "static_configs": [target(worker_port, "worker")]},
        ],
    }
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def wait_for_run(client: httpx.Client, headers: dict[str, str], run_id: str) -> None:
    def finished() -> bool:
        status: str = client.get(f"/api/v1/research/{run_id}", headers=headers).json()["status"]
        assert status not in ("failed", "cancelled"), status
        return status == "succeeded"

    until(finished, 60, f"run {run_id} to succeed")


def healthy_traffic(api: str, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=api, timeout=10) as client:
        assert client.post("/api/v1/documents", headers=headers, json=DOCUMENT).status_code \
            == 201
        for _ in range(2):  # the second identical run is answered from the LLM cache
            response = client.post("/api/v1/research", headers=headers,
                                   json={"question": QUESTION})
            assert response.status_code == 202, response.text
            wait_for_run(client, headers, response.json()["id"])
        for _ in range(10):
            assert client.get("/api/v1/research", headers=headers).status_code == 200
        assert client.get("/ready").status_code == 200


def outage_traffic(api: str, headers: dict[str, str], redis_url: str) -> None:
    with contextlib.suppress(redis.ConnectionError):
        redis.Redis.from_url(redis_url).shutdown(nosave=True)
    statuses = set()
    with httpx.Client(base_url=api, timeout=10) as client:
        # Spread over several scrapes: rate() sees a counter grow, not just appear.
        for _ in range(40):
            statuses.add(client.post("/api/v1/research", headers=headers,
                                     json={"question": QUESTION}).status_code)
            time.sleep(0.2)
        # What the kubelet's readiness probe would see.
        assert client.get("/ready").status_code == 503
    assert statuses == {503}, statuses


def scraped(prometheus_url: str) -> bool:
    response = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": "up == 1"})
    containers = {r["metric"]["container"] for r in response.json()["data"]["result"]}
    return containers == {"api", "worker"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    workdir = tmp_path_factory.mktemp("live-monitoring")
    api_port, worker_port, prometheus_port = free_port(), free_port(), free_port()
    closed_port = free_port()  # nothing listens here: the OpenAI endpoint is unreachable
    with postgres_server() as database_url, redis_server() as redis_url:
        env = service_env(
            database_url, redis_url, LLM_PROVIDERS="openai,offline",
            OPENAI_API_KEY="sk-live-test", OPENAI_BASE_URL=f"http://127.0.0.1:{closed_port}/v1",
            LLM_MAX_ATTEMPTS="1", LLM_TIMEOUT_SECONDS="2", RATE_LIMIT="100000/minute",
            WORKER_METRICS_PORT=str(worker_port), SWEEP_INTERVAL_SECONDS="1",
            LOG_LEVEL="WARNING")
        service = [sys.executable, "-m", "agent_service"]
        subprocess.run([*service, "migrate"], env=env, cwd=APP_DIR, check=True, timeout=120,
                       capture_output=True)
        created = subprocess.run([*service, "keys", "create", "--name", "live"], env=env,
                                 cwd=APP_DIR, check=True, timeout=60, capture_output=True,
                                 text=True)
        headers = {"Authorization": "Bearer "
                                    + json.loads(created.stdout.strip().splitlines()[-1])["key"]}
        api = f"http://127.0.0.1:{api_port}"
        worker_metrics = f"http://127.0.0.1:{worker_port}/metrics"
        config = prometheus_config(workdir, api_port, worker_port)
        with started([*service, "api", "--host", "127.0.0.1", "--port", str(api_port)], env,
                     workdir / "api.log", f"{api}/health"), \
                started([*service, "worker"], env, workdir / "worker.log", worker_metrics), \
                started([prometheus(), f"--config.file={config}",
                         f"--storage.tsdb.path={workdir / 'tsdb'}",
                         f"--web.listen-address=127.0.0.1:{prometheus_port}",
                         "--log.level=warn"], env, workdir / "prometheus.log",
                        f"http://127.0.0.1:{prometheus_port}/-/ready"):
            prometheus_url = f"http://127.0.0.1:{prometheus_port}"
            until(lambda: scraped(prometheus_url), 60, "Prometheus to scrape both targets")
            healthy_traffic(api, headers)
            metrics_text = httpx.get(f"{api}/metrics").text + httpx.get(worker_metrics).text
            outage_traffic(api, headers, redis_url)
            yield Live(prometheus_url, api, worker_metrics, metrics_text)


def query(live: Live, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{live.prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    assert response.status_code == 200, f"{expr}: {response.text}"
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def alert_states(live: Live) -> dict[str, set[str]]:
    alerts = httpx.get(f"{live.prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    states: dict[str, set[str]] = {}
    for alert in alerts:
        states.setdefault(alert["labels"]["alertname"], set()).add(alert["state"])
    return states


def test_prometheus_scrapes_the_api_and_the_worker(live: Live) -> None:
    until(lambda: scraped(live.prometheus), 30, "both targets to be up")


def test_recording_rules_have_data(live: Live) -> None:
    for expr in ('agent:slo_errors:ratio_rate5m{slo="availability"}',
                 'agent:slo_errors:ratio_rate1h{slo="latency"}',
                 "agent:http_request_duration_seconds:p95_rate5m",
                 "agent:http_requests:rate5m", "agent:llm_cost_usd:increase1h"):
        until(lambda e=expr: query(live, e), 60, f"{expr} to have data")  # type: ignore[misc]


def test_the_outage_raises_the_error_alerts(live: Live) -> None:
    def pending_or_firing() -> dict[str, set[str]] | None:
        states = alert_states(live)
        wanted = ("AgentApiErrorRatioHigh", "AgentApiAvailabilityBudgetBurn",
                  "AgentRedisUnreachable")
        return states if all(states.get(name) for name in wanted) else None

    states = until(pending_or_firing, 90, "the error alerts to become pending")
    assert states["AgentApiErrorRatioHigh"] <= {"pending", "firing"}
    ratio = query(live, 'agent:slo_errors:ratio_rate5m{slo="availability"}')
    assert float(ratio[0]["value"][1]) > 0.05
    # Healthy signals stay quiet.
    for quiet in ("AgentWorkersAbsent", "AgentApiTargetsDown", "AgentPostgresUnreachable"):
        assert quiet not in states, quiet


def dashboard_queries() -> list[tuple[str, str, str]]:
    found = []
    for name, document in dashboards(NAMESPACE).items():
        for panel in json.loads(document)["panels"]:
            for target in panel.get("targets", []):
                found.append((name, panel["title"], target["expr"]))
    return found


# Panels fed by kube-state-metrics, which the live test does not run; they must still parse.
CLUSTER_METRICS = re.compile(r"\bkube_")


def test_dashboard_queries_parse_and_return_data(live: Live) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 20
    for dashboard, title, expr in queries:
        concrete = expr.replace("$__rate_interval", "1m")
        if CLUSTER_METRICS.search(expr):
            query(live, concrete)  # parses: a syntax error is an HTTP 400
            continue
        until(lambda e=concrete: query(live, e), 30,  # type: ignore[misc]
              f"{dashboard} / {title}: {concrete}")


def test_every_metric_in_rules_and_dashboards_is_exported(live: Live) -> None:
    exported = set(re.findall(r"^# TYPE (\w+) ", live.metrics_text, re.MULTILINE))
    expressions = [rule["expr"] for group in GROUPS for rule in group["rules"]]
    expressions += [expr for _, _, expr in dashboard_queries()]
    # The canary analyses read the same names: a rename fails here, not in a release.
    canary = api_checks(NAMESPACE, "5m", CANARY_THRESHOLDS) + \
        worker_checks(NAMESPACE, "5m", CANARY_THRESHOLDS)
    expressions += [check.query for check in canary]
    used = set().union(*(service_metrics_in(expr) for expr in expressions))
    assert {"http_requests_total", "llm_failovers_total", "dependency_up",
            "llm_tokens_total"} <= used
    assert used <= exported, f"not exported by the service: {sorted(used - exported)}"
