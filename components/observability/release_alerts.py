"""Alerts on the service's canary releases, from the Argo Rollouts controller's own metrics
(`rollout_info`, one series per Rollout, its `phase` a label). They stay silent on stacks that
release with plain rolling updates: there is no such series."""

from __future__ import annotations

from components.observability.alert import Alert


def release_alerts(namespace: str) -> list[Alert]:
    def phase(value: str) -> str:
        return f'max by (name) (rollout_info{{namespace="{namespace}",phase="{value}"}}) == 1'

    how = (f"`kubectl argo rollouts get rollout {{{{ $labels.name }}}} -n {namespace}` shows "
           "each step and the analysis' measurements.")
    return [
        Alert("AgentReleaseAborted", phase("Degraded"), "1m", "warning",
              "The release of {{ $labels.name }} was aborted",
              "Its canary failed an analysis (errors, latency, run failures, LLM errors or "
              "spend against the stable version) or never became ready; the stable version "
              f"serves everything again. {how}"),
        Alert("AgentReleaseWaitingForDecision", phase("Paused"), "15m", "warning",
              "The release of {{ $labels.name }} waits for a person",
              "An analysis was inconclusive (too little traffic or too few runs to judge the "
              f"canary), so the rollout paused with the canary at its weight. {how} Promote "
              "or abort it."),
    ]
