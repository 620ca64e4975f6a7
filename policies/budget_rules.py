"""The stack's monthly infrastructure estimate (cost_estimate.py) stays within its budget."""

from __future__ import annotations

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from cost_estimate import estimate
from cost_model import Priced, UnknownPrice, usage_for

AWS_PROVIDER = "pulumi:providers:aws"


def _region(args: StackValidationArgs) -> str:
    for resource in args.resources:
        if resource.resource_type == AWS_PROVIDER and resource.props.get("region"):
            return str(resource.props["region"])
    return str(args.get_config().get("region", "eu-west-1"))


def stack_within_budget(args: StackValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    budget = float(config.get("monthlyBudgetUsd") or 0)
    if not budget:
        return
    resources = [Priced(r.resource_type, r.name, r.props) for r in args.resources]
    try:
        found = estimate(resources, _region(args), usage_for(str(config.get("usage",
                                                                            "default"))))
    except UnknownPrice as error:
        report(f"The stack cannot be priced, so its budget cannot be checked: {error}", None)
        return
    if found.total > budget:
        biggest = "; ".join(f"{line.item} ${line.monthly:,.2f}" for line in found.biggest())
        report(f"The infrastructure is estimated at ${found.total:,.2f} a month, over this "
               f"stack's budget of ${budget:,.2f} (prices of {found.prices_as_of}). The biggest "
               f"items: {biggest}. `make cost` shows every line.", None)


BUDGET_POLICIES = [
    StackValidationPolicy(
        name="stack-within-budget",
        description="The stack's estimated monthly infrastructure cost (the pack's estimator "
                    "and dated price table) is within monthlyBudgetUsd.",
        validate=stack_within_budget, severity=Severity.MEDIUM,
        remediation_steps="Cheaper settings (make cost shows what dominates), or a budget "
                          "raised in policies/config/<stack>.json.",
        config_schema=PolicyConfigSchema(properties={
            "monthlyBudgetUsd": {"type": "number", "default": 0, "minimum": 0},
            "usage": {"type": "string", "default": "default"},
            "region": {"type": "string", "default": "eu-west-1"}})),
]
