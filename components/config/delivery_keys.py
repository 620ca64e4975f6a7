"""The progressive-delivery keys (part of the table in keys.py, in its order)."""

from __future__ import annotations

from components.config.key import Key

DELIVERY_KEYS: tuple[Key, ...] = (
    Key("progressiveDelivery", "string",
        "`canary`: Argo Rollouts releases a new version to a share of the API's traffic and of "
        "the workers, judges it on the service's own metrics against the stable version and "
        "promotes it or rolls it back (docs/delivery.md). `bluegreen`: the API's new version "
        "starts beside the old one, is checked, takes all traffic at once and is judged again, "
        "the old one kept to switch back to (workers: canary). `off`: plain rolling updates, "
        "which prod's policy refuses.", "canary"),
    Key("canarySteps", "array",
        "Traffic shares (percent, rising, below 100) the canary holds in turn; each is judged "
        "for canaryStepMinutes before the next, then the canary takes all traffic.",
        ["10", "50"]),
    Key("canaryStepMinutes", "integer", "Minutes each canary step is analysed.", 5),
    Key("canaryMinRequests", "integer",
        "API requests the canary must serve in a step for its verdict; fewer is inconclusive "
        "(the rollout pauses for a person), never a pass.", 100),
    Key("canaryMinRuns", "integer",
        "Research runs the canary workers must finish in a step for a verdict on runs and "
        "spend; fewer is inconclusive.", 5),
    Key("canaryMaxErrorRatio", "string",
        "Share of the canary's API requests that may answer 5xx.", "0.01"),
    Key("canaryMaxLatencyRatio", "string",
        "The canary's p95 latency may be at most this multiple of the stable version's.", "1.5"),
    Key("canaryMaxRunFailureRatio", "string",
        "Share of the canary workers' research runs that may fail.", "0.05"),
    Key("canaryMaxLlmErrorRatio", "string",
        "Share of the canary workers' LLM calls that may fail.", "0.1"),
    Key("canaryMaxSpendRatio", "string",
        "The canary's LLM tokens per run may be at most this multiple of the stable "
        "version's (a canary that spends 2x fails).", "1.5"),
)
