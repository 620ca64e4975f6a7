"""A stack's monthly estimate: the infrastructure priced by the policy pack's estimator over the
stack as the test harness renders it (no AWS credentials needed), plus the LLM spend the stack
config expects, priced with the service's own price table."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "policies"), str(ROOT / "tests")]

from components.config.settings import Settings  # noqa: E402
from cost_estimate import estimate  # noqa: E402
from cost_model import Priced, usage_for  # noqa: E402
from harness import render, stack_config, stack_settings  # noqa: E402

LLM_PRICES = ROOT / "app" / "agent_service" / "llm" / "prices.json"
DAYS_PER_MONTH = 30.4
POLICY_CONFIG = ROOT / "policies" / "config"




def budget(stack: str) -> float | None:
    path = POLICY_CONFIG / f"{stack}.json"
    entry = json.loads(path.read_text()).get("stack-within-budget") if path.exists() else None
    value = entry.get("monthlyBudgetUsd") if isinstance(entry, Mapping) else None
    return float(value) if value else None


def llm_month(settings: Settings, usage: Mapping[str, float],
              model: str | None = None) -> dict[str, Any]:
    llm = settings.service.llm
    model = model or llm.priced_model
    table = json.loads(LLM_PRICES.read_text())["usd_per_million_tokens"]
    if model not in table:
        raise KeyError(f"{model}: not in {LLM_PRICES.relative_to(ROOT)} (has "
                       f"{', '.join(table)})")
    price = table[model]
    runs = llm.expected_runs_per_day * DAYS_PER_MONTH
    per_run = (Decimal(price["input"]) * Decimal(str(usage["prompt_tokens_per_run"]))
               + Decimal(price["output"]) * Decimal(str(usage["completion_tokens_per_run"]))
               ) / Decimal(1_000_000)
    return {"model": model, "runs_per_month": round(runs),
            "prompt_tokens_per_run": usage["prompt_tokens_per_run"],
            "completion_tokens_per_run": usage["completion_tokens_per_run"],
            "usd_per_run": float(round(per_run, 6)),
            "monthly": round(float(per_run) * runs, 2), "basis": "assumption"}


def stack_cost(stack: str, overrides: Mapping[str, Any] | None = None,
               llm_model: str | None = None) -> dict[str, Any]:
    rendered = render(stack, dict(overrides or {}))
    usage = usage_for(stack)
    settings = stack_settings(stack, overrides)
    region = stack_config(stack, overrides).get("aws:region", "eu-west-1")
    infra = estimate([Priced(r.type, r.name, r.inputs) for r in rendered.resources], region,
                     usage)
    llm = llm_month(settings, usage, llm_model)
    runs = llm["runs_per_month"]
    total = round(infra.total + llm["monthly"], 2)
    return {"stack": stack, **infra.as_json(), "llm": llm, "budget_usd": budget(stack),
            "monthly_total_with_llm_usd": total,
            "usd_per_1000_runs": round(total / runs * 1000, 2) if runs else None}
