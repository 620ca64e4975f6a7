"""How a new version of the service reaches its users: the progressive-delivery settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from components.config.reader import ConfigReader

Strategy = Literal["off", "canary", "bluegreen"]
STRATEGIES: tuple[Strategy, ...] = ("off", "canary", "bluegreen")


@dataclass(frozen=True)
class CanaryThresholds:
    min_requests: int
    min_runs: int
    max_error_ratio: float
    max_latency_ratio: float
    max_run_failure_ratio: float
    max_llm_error_ratio: float
    max_spend_ratio: float


@dataclass(frozen=True)
class DeliverySettings:
    strategy: Strategy
    steps: tuple[int, ...]
    """Canary weights in percent, rising."""
    step_minutes: int
    thresholds: CanaryThresholds

    @property
    def progressive(self) -> bool:
        return self.strategy != "off"


def _steps(r: ConfigReader) -> tuple[int, ...]:
    raw = r.strings("canarySteps")
    try:
        steps = tuple(int(s) for s in raw)
    except ValueError:
        steps = ()
    if not steps or any(not 0 < s < 100 for s in steps) or list(steps) != sorted(set(steps)):
        r.fail("canarySteps", list(raw), "rising whole percentages between 1 and 99, e.g. "
               '["10", "50"]')
        return (10, 50)
    return steps


def read_delivery(r: ConfigReader, monitoring_enabled: bool) -> DeliverySettings:
    strategy = r.choice("progressiveDelivery", STRATEGIES)
    if strategy != "off" and not monitoring_enabled:
        r.fail("progressiveDelivery", strategy, "a canary is judged on Prometheus' metrics: "
               "turn monitoringEnabled on, or set progressiveDelivery to off")
    return DeliverySettings(
        strategy=strategy, steps=_steps(r),
        step_minutes=r.integer("canaryStepMinutes", 1, 120),
        thresholds=CanaryThresholds(
            min_requests=r.integer("canaryMinRequests", 1, 1_000_000),
            min_runs=r.integer("canaryMinRuns", 1, 100_000),
            max_error_ratio=r.number("canaryMaxErrorRatio", 0, 1, "0.01"),
            max_latency_ratio=r.number("canaryMaxLatencyRatio", 1, 100, "1.5"),
            max_run_failure_ratio=r.number("canaryMaxRunFailureRatio", 0, 1, "0.05"),
            max_llm_error_ratio=r.number("canaryMaxLlmErrorRatio", 0, 1, "0.1"),
            max_spend_ratio=r.number("canaryMaxSpendRatio", 1, 100, "1.5")))
