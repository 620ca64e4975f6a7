"""Versions that must agree, and dates that must not pass unnoticed: the EKS minor is in
standard support with time to spare, and the Cluster Autoscaler runs the cluster's minor."""

from __future__ import annotations

import datetime

import pytest

from components.config.keys import KEYS_BY_NAME
from components.versions import CLUSTER_AUTOSCALER_IMAGE_TAGS, KUBERNETES_VERSIONS
from harness import Rendered
from support_calendar import calendar, support_problem

AWS_STACKS = ("dev", "prod")
# Time to plan and roll an upgrade (control plane, add-ons, nodes) before extended support bills.
UPGRADE_NOTICE = datetime.timedelta(days=60)


def test_the_default_minor_stays_in_standard_support_long_enough() -> None:
    default = KEYS_BY_NAME["kubernetesVersion"].default
    ends = calendar()[str(default)].standard_ends
    assert ends - datetime.date.today() > UPGRADE_NOTICE, (
        f"EKS {default} leaves standard support on {ends}: move the default to a newer minor "
        "(components/versions.py) and refresh policies/eks_support_calendar.json")


def test_every_deployable_minor_is_in_the_calendar() -> None:
    assert set(KUBERNETES_VERSIONS) <= set(calendar())


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_the_autoscaler_runs_the_clusters_minor(stacks: dict[str, Rendered], stack: str) -> None:
    rendered = stacks[stack]
    version = rendered.one("aws:eks/cluster:Cluster").inputs["version"]
    assert support_problem(version, datetime.date.today()) is None
    (autoscaler,) = [r for r in rendered.of_type("kubernetes:helm.sh/v3:Release")
                     if r.inputs["chart"] == "cluster-autoscaler"]
    tag = autoscaler.inputs["values"]["image"]["tag"]
    assert tag == CLUSTER_AUTOSCALER_IMAGE_TAGS[version]
    assert tag.removeprefix("v").rsplit(".", 1)[0] == version


@pytest.mark.parametrize(("version", "today", "problem"), [
    ("1.35", datetime.date(2027, 3, 27), None),
    ("1.35", datetime.date(2027, 3, 28), "Kubernetes 1.35 left EKS standard support on "
     "2027-03-27: the control plane now bills at the extended-support rate (six times "
     "standard) until 2028-03-27"),
    ("1.34", datetime.date(2026, 12, 3), "Kubernetes 1.34 left EKS standard support on "
     "2026-12-02"),
    ("1.99", datetime.date(2026, 12, 1), "Kubernetes 1.99 is not in the EKS support calendar"),
])
def test_the_calendar_says_when_and_why(version: str, today: datetime.date,
                                        problem: str | None) -> None:
    found = support_problem(version, today)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem), found
