"""The EKS support calendar (eks_support_calendar.json) and the rule that reads it: a cluster
whose Kubernetes minor has left standard support costs six times as much per hour."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

from pulumi_policy import (
    ReportViolation,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

CALENDAR = Path(__file__).resolve().parent / "eks_support_calendar.json"
EKS_CLUSTER = "aws:eks/cluster:Cluster"


@dataclass(frozen=True)
class Support:
    version: str
    standard_ends: datetime.date
    extended_ends: datetime.date


def calendar() -> dict[str, Support]:
    versions = json.loads(CALENDAR.read_text())["versions"]
    return {version: Support(version, datetime.date.fromisoformat(dates["end_of_standard_support"]),
                             datetime.date.fromisoformat(dates["end_of_extended_support"]))
            for version, dates in versions.items()}


def support_problem(version: str, today: datetime.date) -> str | None:
    """Why `version` is not in standard support on `today`, or None when it is."""
    known = calendar()
    support = known.get(version)
    if support is None:
        return (f"Kubernetes {version} is not in the EKS support calendar "
                f"(policies/{CALENDAR.name}; known: {', '.join(known)}): add it with its dates "
                "from the EKS release calendar, or choose a listed version.")
    if today <= support.standard_ends:
        return None
    newest = max(known.values(), key=lambda s: s.standard_ends)
    return (f"Kubernetes {version} left EKS standard support on "
            f"{support.standard_ends.isoformat()}: the control plane now bills at the "
            f"extended-support rate (six times standard) until {support.extended_ends.isoformat()}"
            f", then EKS upgrades it by force. Upgrade kubernetesVersion one minor at a time "
            f"(newest: {newest.version}, standard support until "
            f"{newest.standard_ends.isoformat()}).")


def eks_version_in_standard_support(args: StackValidationArgs,
                                    report: ReportViolation) -> None:
    today = datetime.datetime.now(datetime.UTC).date()
    for resource in args.resources:
        if resource.resource_type != EKS_CLUSTER:
            continue
        version = resource.props.get("version")
        if not isinstance(version, str):
            continue  # unknown during a preview of a new stack; checked on `up`
        problem = support_problem(version, today)
        if problem is not None:
            report(problem, resource.urn)


EKS_VERSION_POLICY = StackValidationPolicy(
    name="eks-version-in-standard-support",
    description="Every EKS cluster runs a Kubernetes minor in EKS standard support, by the "
                "dated support calendar in the pack.",
    validate=eks_version_in_standard_support, severity=Severity.HIGH,
    remediation_steps="Upgrade kubernetesVersion to a minor in standard support (docs/"
                      "operations.md: control plane, then add-ons, then nodes).")
