"""`make cost-prices`: refresh policies/aws_prices.json from the AWS Price List Query API.

For every region in the table (or the one asked for), the on-demand hourly price of each node,
database and cache class listed there, and the gp3 storage prices, are read with boto3
`pricing.get_products` and written back with today's date; prices the API is not asked for are
kept as they were, and the file says which were refreshed. Needs AWS credentials (any principal
allowed pricing:GetProducts).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PRICES = ROOT / "policies" / "aws_prices.json"
# The Price List API answers from these regions only.
PRICING_REGION = "us-east-1"
# Table key -> (service code, filters besides the region, the attribute naming the size).
CLASSES: dict[str, tuple[str, dict[str, str], str]] = {
    "ec2_hour": ("AmazonEC2", {"operatingSystem": "Linux", "tenancy": "Shared",
                               "preInstalledSw": "NA", "capacitystatus": "Used"},
                 "instanceType"),
    "rds_postgres_hour": ("AmazonRDS", {"databaseEngine": "PostgreSQL",
                                        "deploymentOption": "Single-AZ"}, "instanceType"),
    "elasticache_valkey_hour": ("AmazonElastiCache", {"cacheEngine": "Valkey"},
                                "instanceType"),
}
SCALARS: dict[str, tuple[str, dict[str, str]]] = {
    "ebs_gp3_gb_month": ("AmazonEC2", {"productFamily": "Storage", "volumeApiName": "gp3"}),
    "rds_gp3_gb_month": ("AmazonRDS", {"productFamily": "Database Storage",
                                       "volumeType": "General Purpose-GP3",
                                       "databaseEngine": "PostgreSQL",
                                       "deploymentOption": "Single-AZ"}),
}


def on_demand_usd(products: list[str]) -> float:
    """The one on-demand USD price in a get_products answer (its PriceList entries)."""
    found: set[float] = set()
    for product in products:
        terms = json.loads(product)["terms"].get("OnDemand", {})
        for term in terms.values():
            for dimension in term["priceDimensions"].values():
                usd = float(dimension["pricePerUnit"]["USD"])
                if usd > 0:
                    found.add(usd)
    if len(found) != 1:
        raise LookupError(f"expected one on-demand price, found {sorted(found) or 'none'}")
    return found.pop()


def _query(client: Any, service: str, filters: Mapping[str, str]) -> float:
    answer = client.get_products(ServiceCode=service, MaxResults=100, Filters=[
        {"Type": "TERM_MATCH", "Field": key, "Value": value} for key, value in filters.items()])
    return on_demand_usd(answer["PriceList"])


def refresh(table: dict[str, Any], client: Any, regions: list[str],
            today: datetime.date) -> dict[str, Any]:
    """The table with every API-known price of `regions` read again, dated `today`."""
    refreshed: list[str] = []
    for region in regions:
        prices = table["regions"][region]
        for key, (service, filters, size_field) in CLASSES.items():
            for size in prices[key]:
                prices[key][size] = _query(client, service, {
                    **filters, "regionCode": region, size_field: size})
                refreshed.append(f"{region} {key} {size}")
        for key, (service, filters) in SCALARS.items():
            prices[key] = _query(client, service, {**filters, "regionCode": region})
            refreshed.append(f"{region} {key}")
    return {**table, "as_of": today.isoformat(), "refreshed_from_api": refreshed}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m cost.prices", description=__doc__)
    parser.add_argument("--region", action="append", help="default: every region listed")
    args = parser.parse_args()
    try:
        import boto3
    except ImportError:
        sys.exit("needs boto3: make venv installs it")
    table = json.loads(PRICES.read_text())
    regions = args.region or list(table["regions"])
    missing = [r for r in regions if r not in table["regions"]]
    if missing:
        sys.exit(f"{', '.join(missing)}: not in {PRICES.name}; copy a region's entry under the "
                 "new name first (its instance lists say what to price), then run this again")
    updated = refresh(table, boto3.client("pricing", region_name=PRICING_REGION), regions,
                      datetime.datetime.now(datetime.UTC).date())
    PRICES.write_text(json.dumps(updated, indent=2) + "\n")
    print(f"{PRICES.relative_to(ROOT)}: {len(updated['refreshed_from_api'])} prices "  # noqa: T201
          f"refreshed, dated {updated['as_of']}")


if __name__ == "__main__":
    main()
