"""A monthly cost estimate of a stack, from its resources as Pulumi sees them.

One estimator for two readers: the pack's `stack-within-budget` rule (the resources the CLI hands
a stack policy) and `make cost` (the resources the test harness renders). Each line is one
priced item with its quantity, unit price and monthly figure, and says whether it is `exact`
(read from the resources and the dated price table) or an `assumption` (a usage figure from
cost_usage.json: traffic, log volume, spot discount). Items the program does not create as AWS
resources are priced from the Kubernetes objects that make AWS create them: the ALB from an ALB
Ingress, EBS volumes from PVCs, StatefulSet claim templates and Helm values.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

HERE = Path(__file__).resolve().parent
PRICES = HERE / "aws_prices.json"
USAGE = HERE / "cost_usage.json"
Basis = Literal["exact", "assumption"]
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)(Mi|Gi|Ti)$")
_GB_PER = {"Mi": 1 / 1024, "Gi": 1.0, "Ti": 1024.0}


@dataclass(frozen=True)
class Priced:
    """A resource as the estimator reads it: its type token, name and inputs."""

    type: str
    name: str
    props: Mapping[str, Any]


@dataclass(frozen=True)
class Line:
    item: str
    quantity: float
    unit: str
    unit_price: float
    monthly: float
    basis: Basis
    note: str = ""


@dataclass
class Estimate:
    region: str
    prices_as_of: str
    prices_source: str
    lines: list[Line] = field(default_factory=list)

    @property
    def total(self) -> float:
        return round(sum(line.monthly for line in self.lines), 2)

    def biggest(self, count: int = 3) -> list[Line]:
        return sorted(self.lines, key=lambda line: line.monthly, reverse=True)[:count]

    def as_json(self) -> dict[str, Any]:
        return {"region": self.region, "prices_as_of": self.prices_as_of,
                "prices_source": self.prices_source, "monthly_total_usd": self.total,
                "lines": [asdict(line) for line in self.lines]}


class UnknownPrice(LookupError):
    """The price table has no price for something the stack creates."""


def gigabytes(size: str) -> float:
    """A Kubernetes quantity such as `50Gi` in GB-months as EBS bills them (GiB)."""
    match = _SIZE.match(size)
    if not match:
        raise ValueError(f"{size!r}: expected a size such as 20Gi")
    return float(match.group(1)) * _GB_PER[match.group(2)]


def usage_for(stack: str) -> dict[str, float]:
    table = json.loads(USAGE.read_text())
    return {**table["default"], **table.get(stack, {})}


class Pricer:
    """The price table of one region, the usage assumptions, and the lines priced so far."""

    def __init__(self, region: str, usage: Mapping[str, float], today: datetime.date) -> None:
        table = json.loads(PRICES.read_text())
        if region not in table["regions"]:
            raise UnknownPrice(f"no prices for region {region} in {PRICES.name} (has "
                               f"{', '.join(table['regions'])}): copy a region's entry under "
                               f"{region}, then run `make cost-prices REGION={region}`")
        self.p: Mapping[str, Any] = table["regions"][region]
        self.hours = float(table["hours_per_month"])
        self.usage = usage
        self.today = today
        self.estimate = Estimate(region, table["as_of"], table["source"])

    def price(self, key: str, size: str | None = None) -> float:
        value = self.p[key]
        if size is None:
            return float(value)
        if size not in value:
            raise UnknownPrice(f"no {key} price for {size} in {PRICES.name}: add it (or run "
                               "`make cost-prices`)")
        return float(value[size])

    def add(self, item: str, quantity: float, unit: str, unit_price: float,
            basis: Basis = "exact", note: str = "") -> None:
        if quantity:
            self.estimate.lines.append(Line(item, round(quantity, 3), unit, unit_price,
                                            round(quantity * unit_price, 2), basis, note))


def of_type(resources: Iterable[Priced], type_: str) -> Iterator[Priced]:
    return (r for r in resources if r.type == type_)
