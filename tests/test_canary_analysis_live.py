"""The canary analyses' queries on a live Prometheus over synthetic series, and the verdict Argo
Rollouts would give each (CanaryCheck.verdict mirrors the release's utils/evaluate for our
conditions): a healthy canary passes, one with 5 % errors, twice the latency, twice the tokens
per run or failing runs fails, one with too little traffic is inconclusive, never passed.

Each case is its own namespace of series, backfilled with `promtool tsdb create-blocks-from
openmetrics` (a pod-template hash per version, as the monitors label them) and queried at the
end of a step through Prometheus' HTTP API, exactly as the AnalysisTemplates render them.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from devtools.servers import free_port, stop_process, wait_until_ready
from promtool import prometheus, promtool

from components.config.delivery import CanaryThresholds
from components.kubernetes.service.canary_checks import CanaryCheck, api_checks, worker_checks

THRESHOLDS = CanaryThresholds(min_requests=100, min_runs=5, max_error_ratio=0.01,
                              max_latency_ratio=1.5, max_run_failure_ratio=0.05,
                              max_llm_error_ratio=0.1, max_spend_ratio=1.5)
WINDOW = "5m"
STEP_SECONDS = 15
MINUTES = 20
CANARY, STABLE = "c4n4ry", "s74b1e"
# Cumulative share of requests at or under each bound: fast (p95 ~0.24 s) and twice as slow.
FAST = {"0.1": 0.5, "0.25": 1.0, "0.5": 1.0, "1.0": 1.0, "+Inf": 1.0}
SLOW = {"0.1": 0.0, "0.25": 0.5, "0.5": 1.0, "1.0": 1.0, "+Inf": 1.0}

pytestmark = pytest.mark.timeout(120)


@dataclass(frozen=True)
class Version:
    """How one version behaves, per second."""

    requests: float = 2.0
    error_share: float = 0.0
    latency: dict[str, float] | None = None
    runs: float = 0.1
    run_failure_share: float = 0.0
    llm_error_share: float = 0.0
    tokens_per_run: float = 4800.0


HEALTHY = Version()
CASES: dict[str, tuple[Version, dict[str, str]]] = {
    "healthy": (HEALTHY, {}),
    "errors": (Version(error_share=0.05), {"api-error-ratio": "Failed"}),
    "slow": (Version(latency=SLOW), {"api-latency-p95-ratio": "Failed"}),
    "spendy": (Version(tokens_per_run=9600), {"spend-per-run-ratio": "Failed"}),
    "failing-runs": (Version(run_failure_share=0.2), {"run-failure-ratio": "Failed"}),
    "llm-errors": (Version(llm_error_share=0.3), {"llm-error-ratio": "Failed"}),
    "quiet": (Version(requests=0.1, runs=0.01), dict.fromkeys(
        ("api-error-ratio", "api-latency-p95-ratio", "run-failure-ratio", "llm-error-ratio",
         "spend-per-run-ratio"), "Inconclusive")),
}


def _series(namespace: str, version: str, v: Version) -> dict[str, dict[str, float]]:
    """Counter families -> labelled series -> increase per second."""
    ns = f'namespace="{namespace}",rollouts_pod_template_hash="{version}"'
    post, get = 'route="/api/v1/research",method="POST"', 'route="/api/v1/research/{run_id}"'
    latency = v.latency or FAST
    llm = 'provider="openai",model="gpt-4.1-mini"'
    return {
        "http_requests": {
            f'{{{ns},{post},status="202"}}': v.requests * (1 - v.error_share),
            f'{{{ns},{post},status="500"}}': v.requests * v.error_share},
        "http_request_duration_seconds": {
            **{f'_bucket{{{ns},{get},method="GET",le="{le}"}}': v.requests * share
               for le, share in latency.items()},
            f'_count{{{ns},{get},method="GET"}}': v.requests},
        "research_runs": {
            f'{{{ns},status="succeeded"}}': v.runs * (1 - v.run_failure_share),
            f'{{{ns},status="failed"}}': v.runs * v.run_failure_share},
        "llm_calls": {
            f'{{{ns},{llm},outcome="success"}}': 3 * v.runs * (1 - v.llm_error_share),
            f'{{{ns},{llm},outcome="error"}}': 3 * v.runs * v.llm_error_share},
        "llm_tokens": {f'{{{ns},{llm},type="prompt"}}': v.runs * v.tokens_per_run},
    }


def openmetrics(end: int) -> str:
    families: dict[str, dict[str, float]] = {}
    for case, (canary, _) in CASES.items():
        for version, behaviour in ((CANARY, canary), (STABLE, HEALTHY)):
            for family, series in _series(case, version, behaviour).items():
                families.setdefault(family, {}).update(series)
    lines = []
    start = end - MINUTES * 60
    for family, series in families.items():
        kind = "histogram" if family.endswith("_seconds") else "counter"
        lines.append(f"# TYPE {family} {kind}")
        for labels, per_second in series.items():
            name = family + (labels if kind == "histogram" else "_total" + labels)
            lines += [f"{name} {per_second * (t - start):.3f} {t}"
                      for t in range(start, end + 1, STEP_SECONDS)]
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def prometheus_at(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    workdir = tmp_path_factory.mktemp("canary")
    # An hour back: inside retention, before anything a live head block would hold.
    end = int(time.time()) // 60 * 60 - 3600
    (workdir / "series.om").write_text(openmetrics(end))
    subprocess.run([promtool(), "tsdb", "create-blocks-from", "openmetrics",
                    str(workdir / "series.om"), str(workdir / "tsdb")],
                   check=True, capture_output=True, timeout=60)
    (workdir / "prometheus.yml").write_text("global: {}\n")
    port = free_port()
    with (workdir / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [prometheus(), f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=log)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_ready(f"{url}/-/ready", process, 60)
            yield url, end
        finally:
            stop_process(process)


def measure(url: str, at: int, check: CanaryCheck) -> list[float]:
    """What Argo's Prometheus provider reads: the vector's values, at the step's end."""
    query = check.query.replace("{{args.canary-hash}}", CANARY).replace(
        "{{args.stable-hash}}", STABLE)
    response = httpx.get(f"{url}/api/v1/query", params={"query": query, "time": at}, timeout=10)
    assert response.status_code == 200, f"{check.name}: {response.text}"
    return [float(sample["value"][1]) for sample in response.json()["data"]["result"]]


@pytest.mark.parametrize("case", list(CASES))
def test_each_canary_gets_the_verdict_its_behaviour_earns(prometheus_at: tuple[str, int],
                                                          case: str) -> None:
    url, end = prometheus_at
    checks = api_checks(case, WINDOW, THRESHOLDS) + worker_checks(case, WINDOW, THRESHOLDS)
    verdicts = {c.name: c.verdict(measure(url, end, c)) for c in checks}
    expected = {c.name: "Successful" for c in checks} | CASES[case][1]
    assert verdicts == expected


def test_the_conditions_are_the_verdicts_argo_evaluates() -> None:
    """The strings Argo evaluates say what `verdict` decides: a value at the limit passes,
    above fails, none (or NaN, which compares false both ways) is inconclusive."""
    check = api_checks("ns", WINDOW, THRESHOLDS)[0]
    assert check.success_condition == "len(result) > 0 && result[0] <= 0.01"
    assert check.failure_condition == "len(result) > 0 && result[0] > 0.01"
    assert [check.verdict(r) for r in ([0.01], [0.0100001], [], [float("nan")])] == [
        "Successful", "Failed", "Inconclusive", "Inconclusive"]


def test_every_query_passes_promtool(tmp_path: Path) -> None:
    """Each query as Argo sends it, with its arguments filled in, checked by promtool as a rule."""
    checks = api_checks("agent-service", WINDOW, THRESHOLDS) + \
        worker_checks("agent-service", WINDOW, THRESHOLDS)
    rules = [{"record": f"canary:{c.name.replace('-', '_')}",
              "expr": c.query.replace("{{args.canary-hash}}", CANARY).replace(
                  "{{args.stable-hash}}", STABLE)} for c in checks]
    path = tmp_path / "canary.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "canary", "rules": rules}]}))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
