"""Backups that meet the recovery point: every RDS instance is in an AWS Backup plan that runs
often enough (the source documents' RPO: one hour)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

RDS_INSTANCE = "aws:rds/instance:Instance"
BACKUP_PLAN = "aws:backup/plan:Plan"
BACKUP_SELECTION = "aws:backup/selection:Selection"
_CRON = re.compile(r"^cron\((\S+) (\S+) (\S+) (\S+) (\S+)(?: (\S+))?\)$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_HOURS_PER = {"minute": 1 / 60, "hour": 1, "day": 24}


def interval_hours(schedule: str) -> float | None:
    """The longest gap, in hours, between two runs of an AWS Backup schedule expression, or
    None when the expression is not one this rule can read (then it does not count)."""
    rate = _RATE.match(schedule)
    if rate:
        return int(rate.group(1)) * _HOURS_PER[rate.group(2).rstrip("s")]
    cron = _CRON.match(schedule)
    if not cron:
        return None
    hours, day_of_month, day_of_week = cron.group(2), cron.group(3), cron.group(5)
    if day_of_month not in ("*", "?") or day_of_week not in ("*", "?"):
        return 24 * 7  # not every day: at least a day between runs, call it a week
    if hours == "*":
        return 1
    step = re.fullmatch(r"(?:\*|0)/(\d+)", hours)
    if step:
        return float(step.group(1))
    if re.fullmatch(r"\d+(,\d+)*", hours):
        runs = sorted({int(h) for h in hours.split(",")})
        gaps = [b - a for a, b in zip(runs, runs[1:], strict=False)]
        return float(max([*gaps, 24 - runs[-1] + runs[0]]))
    return None


def _of_type(args: StackValidationArgs, type_: str) -> Iterator[PolicyResource]:
    return (r for r in args.resources if r.resource_type == type_)


def _rpo_hours(plan: Mapping[str, Any]) -> float | None:
    """How often the plan's most frequent rule runs, counting only rules that keep what they
    make for a day or more."""
    found = []
    for rule in plan.get("rules") or []:
        keep = (rule.get("lifecycle") or {}).get("deleteAfter")
        hours = interval_hours(str(rule.get("schedule") or ""))
        if hours is not None and (keep is None or keep >= 1):
            found.append(hours)
    return min(found, default=None)


def backups_meet_rpo(args: StackValidationArgs, report: ReportViolation) -> None:
    limit = float(args.get_config().get("maximumRpoHours", 1))
    covered: dict[str, float] = {}
    for selection in _of_type(args, BACKUP_SELECTION):
        depends_on = selection.dependencies or []
        plans = [d for d in depends_on if d.resource_type == BACKUP_PLAN]
        rpo = min((h for p in plans if (h := _rpo_hours(p.props)) is not None), default=None)
        if rpo is None:
            continue
        for instance in (d for d in depends_on if d.resource_type == RDS_INSTANCE):
            covered[instance.urn] = min(rpo, covered.get(instance.urn, rpo))
    for instance in _of_type(args, RDS_INSTANCE):
        rpo = covered.get(instance.urn)
        if rpo is None:
            report(f"RDS instance {instance.name} is in no AWS Backup plan: a deleted instance "
                   "or a lost region takes its automated backups with it. Set awsBackup to "
                   "true.", instance.urn)
        elif rpo > limit:
            report(f"RDS instance {instance.name} is backed up every {rpo:g} h at best; this "
                   f"stack's recovery point is {limit:g} h. Add a rule that runs at least that "
                   "often.", instance.urn)


BACKUP_POLICIES = [
    StackValidationPolicy(
        name="backups-meet-rpo",
        description="Every RDS instance is in an AWS Backup plan whose rules run at least "
                    "every maximumRpoHours hours.",
        validate=backups_meet_rpo, severity=Severity.HIGH,
        remediation_steps="Set awsBackup to true (hourly and daily recovery points).",
        config_schema=PolicyConfigSchema(properties={
            "maximumRpoHours": {"type": "number", "default": 1, "minimum": 0}})),
]
