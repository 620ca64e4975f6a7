"""The monthly estimate of a stack: every priced item, in one place (cost_model.py)."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping

import cost_items_aws as aws
import cost_items_k8s as k8s
from cost_model import Estimate, Priced, Pricer

ITEMS = (aws.eks, aws.network, aws.nodes, aws.database, aws.backups, aws.cache,
         k8s.load_balancers, k8s.volumes, k8s.logs_keys_registry)


def estimate(resources: Iterable[Priced], region: str, usage: Mapping[str, float],
             today: datetime.date | None = None) -> Estimate:
    """The estimate of a stack's resources in `region`. A stack without AWS resources (the
    local one) costs nothing here: its cluster is the user's own."""
    listed = list(resources)
    pricer = Pricer(region, usage, today or datetime.datetime.now(datetime.UTC).date())
    if any(r.type.startswith("aws:") for r in listed):
        for item in ITEMS:
            item(pricer, listed)
    return pricer.estimate
