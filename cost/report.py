"""The estimate for people: a table per stack, and the delta between two estimates as the
Markdown a pull request comment shows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _money(value: float) -> str:
    return f"${value:,.2f}"


def table(estimate: Mapping[str, Any]) -> str:
    rows = [f"{estimate['stack']} ({estimate['region']}, prices of {estimate['prices_as_of']})",
            f"{'item':<58} {'quantity':>12} {'unit':<15} {'unit price':>10} {'monthly':>11}  "
            "basis"]
    for line in sorted(estimate["lines"], key=lambda line: -line["monthly"]):
        rows.append(f"{line['item'][:58]:<58} {line['quantity']:>12,.1f} {line['unit']:<15} "
                    f"{line['unit_price']:>10.4f} {_money(line['monthly']):>11}  "
                    f"{line['basis']}")
    rows.append(f"{'infrastructure':<98} {_money(estimate['monthly_total_usd']):>11}")
    llm = estimate["llm"]
    label = f"LLM: {llm['model']}, {llm['runs_per_month']:,} runs"
    rows.append(f"{label:<98} {_money(llm['monthly']):>11}  assumption")
    rows.append(f"{'total':<98} {_money(estimate['monthly_total_with_llm_usd']):>11}")
    if estimate.get("usd_per_1000_runs") is not None:
        rows.append(f"{'per 1,000 research runs':<98} "
                    f"{_money(estimate['usd_per_1000_runs']):>11}")
    if estimate.get("budget_usd"):
        left = estimate["budget_usd"] - estimate["monthly_total_usd"]
        rows.append(f"budget {_money(estimate['budget_usd'])} for infrastructure: "
                    + (f"{_money(left)} left" if left >= 0 else f"{_money(-left)} over"))
    return "\n".join(rows)


def delta(base: Mapping[str, Any], head: Mapping[str, Any]) -> list[tuple[str, float, float]]:
    """(item, base monthly, head monthly) for every line that differs, largest change first. An
    empty base (one from before the estimate existed) has no lines."""
    before = {line["item"]: line["monthly"] for line in base.get("lines", [])}
    after = {line["item"]: line["monthly"] for line in head["lines"]}
    before["LLM"] = base.get("llm", {}).get("monthly", 0.0)
    after["LLM"] = head["llm"]["monthly"]
    changed = [(item, before.get(item, 0.0), after.get(item, 0.0))
               for item in sorted(set(before) | set(after))
               if before.get(item, 0.0) != after.get(item, 0.0)]
    return sorted(changed, key=lambda row: -abs(row[2] - row[1]))


def delta_markdown(base: Mapping[str, Any], head: Mapping[str, Any]) -> str:
    base_total = float(base.get("monthly_total_usd", 0.0))
    change = head["monthly_total_usd"] - base_total
    lines = [f"**{head['stack']}**: infrastructure {_money(base_total)} -> "
             f"{_money(head['monthly_total_usd'])} a month ({'+' if change >= 0 else '-'}"
             f"{_money(abs(change))}); prices of {head['prices_as_of']}"]
    rows = delta(base, head)
    if rows:
        lines += ["", "| item | base | head | delta |", "|---|---:|---:|---:|"]
        lines += [f"| {item} | {_money(old)} | {_money(new)} | "
                  f"{'+' if new >= old else '-'}{_money(abs(new - old))} |"
                  for item, old, new in rows]
    else:
        lines.append("\nNo priced line changes.")
    return "\n".join(lines)
