"""The cost estimate (policies/cost_*.py, cost/): each priced item against figures computed by
hand for a small fixture stack, the delta between two renders, the budget rule firing and
passing, the shipped stacks' targets, the price table shared with the service, the price
refresh against the Price List API's answer shape, and the preview workflow's cost comment."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from cost.prices import on_demand_usd, refresh
from cost.report import delta, delta_markdown, table
from cost.stack_cost import LLM_PRICES, stack_cost
from cost_estimate import estimate
from cost_model import PRICES, Priced, UnknownPrice, gigabytes
from harness import ROOT, Rendered
from policy_runner import evaluate

TODAY = datetime.date(2026, 12, 1)
USAGE = {"spot_discount": 0.6, "nat_processed_gb_month": 100, "alb_lcus": 1,
         "control_plane_log_gb_month": 10, "database_log_gb_month": 2, "database_used_gb": 10,
         "database_daily_change_ratio": 0.1, "image_gb": 0.5,
         "internet_transfer_out_gb_month": 20, "prompt_tokens_per_run": 4000,
         "completion_tokens_per_run": 800}
PROMETHEUS_VALUES = {"prometheus": {"prometheusSpec": {"replicas": 2, "storageSpec": {
    "volumeClaimTemplate": {"spec": {"resources": {"requests": {"storage": "50Gi"}}}}}}},
    "alertmanager": {"alertmanagerSpec": {"replicas": 2, "storage": {
        "volumeClaimTemplate": {"spec": {"resources": {"requests": {"storage": "2Gi"}}}}}}}}
FIXTURE = [
    Priced("aws:eks/cluster:Cluster", "eks", {"version": "1.35",
                                              "upgradePolicy": {"supportType": "STANDARD"}}),
    Priced("aws:ec2/natGateway:NatGateway", "nat", {}),
    Priced("aws:ec2/eip:Eip", "nat-ip", {}),
    Priced("aws:ec2/subnet:Subnet", "public-a", {"mapPublicIpOnLaunch": True}),
    Priced("aws:ec2/subnet:Subnet", "public-b", {"mapPublicIpOnLaunch": True}),
    Priced("aws:ec2/subnet:Subnet", "private-a", {}),
    Priced("aws:ec2/launchTemplate:LaunchTemplate", "nodes", {"blockDeviceMappings": [
        {"ebs": {"volumeSize": 20, "volumeType": "gp3"}}]}),
    Priced("aws:eks/nodeGroup:NodeGroup", "nodes", {
        "instanceTypes": ["m7i.large"], "capacityType": "ON_DEMAND",
        "scalingConfig": {"minSize": 2, "desiredSize": 2, "maxSize": 4}}),
    Priced("aws:rds/instance:Instance", "db", {
        "instanceClass": "db.t4g.micro", "multiAz": True, "allocatedStorage": 20,
        "backupRetentionPeriod": 14, "enabledCloudwatchLogsExports": ["postgresql"]}),
    Priced("aws:elasticache/replicationGroup:ReplicationGroup", "cache", {
        "nodeType": "cache.t4g.micro", "numCacheClusters": 2}),
    Priced("kubernetes:networking.k8s.io/v1:Ingress", "api", {
        "metadata": {"annotations": {"alb.ingress.kubernetes.io/scheme": "internet-facing",
                                     "alb.ingress.kubernetes.io/group.name": "agent"}},
        "spec": {"ingressClassName": "alb"}}),
    Priced("kubernetes:networking.k8s.io/v1:Ingress", "grafana", {
        "metadata": {"annotations": {"alb.ingress.kubernetes.io/scheme": "internet-facing",
                                     "alb.ingress.kubernetes.io/group.name": "agent"}},
        "spec": {"ingressClassName": "alb"}}),
    Priced("kubernetes:core/v1:PersistentVolumeClaim", "backups", {
        "spec": {"resources": {"requests": {"storage": "10Gi"}}}}),
    Priced("kubernetes:helm.sh/v3:Release", "monitoring", {"values": PROMETHEUS_VALUES}),
    Priced("aws:cloudwatch/logGroup:LogGroup", "logs", {"retentionInDays": 90}),
    Priced("aws:kms/key:Key", "a", {}), Priced("aws:kms/key:Key", "b", {}),
    Priced("aws:ecr/lifecyclePolicy:LifecyclePolicy", "images", {"policy": json.dumps(
        {"rules": [{"selection": {"countType": "imageCountMoreThan", "countNumber": 10}}]})}),
    Priced("aws:backup/plan:Plan", "plan", {"rules": [
        {"ruleName": "hourly", "lifecycle": {"deleteAfter": 2}},
        {"ruleName": "daily", "lifecycle": {"deleteAfter": 35},
         "copyActions": [{"destinationVaultArn": "arn:copy"}]}]}),
]
# Every line, computed by hand from the eu-west-1 table (730 hours a month).
EXPECTED = {
    "EKS control plane 1.35 (standard support)": 73.00,          # 730 x 0.10
    "NAT gateways": 35.04,                                       # 730 x 0.048
    "NAT data processed": 4.80,                                  # 100 GB x 0.048
    "Public IPv4 addresses (NAT)": 3.65,                         # 730 x 0.005
    "Data transfer out to the internet": 1.80,                   # 20 GB x 0.09
    "Nodes: 2 x m7i.large on-demand": 163.67,                    # 2 x 730 x 0.1121
    "EBS gp3: node root volumes": 3.52,                          # 2 x 20 GB x 0.088
    "RDS Postgres db.t4g.micro Multi-AZ": 26.28,                 # 2 x 730 x 0.018
    "RDS gp3 storage (Multi-AZ)": 5.08,                          # 2 x 20 GB x 0.127
    # kept 10 x (1 + 0.1 x 14) = 24 GB, 20 GB free: 4 GB x 0.095
    "RDS backups beyond the free allowance (= allocated storage)": 0.38,
    "CloudWatch Logs: Postgres log ingestion": 1.14,             # 2 GB x 0.57
    # 10 GB + 1 GB a day for 35 days = 45 GB x 0.095, twice; 30 GB a month x 0.02 copied
    "AWS Backup: RDS recovery points": 4.28,
    "AWS Backup: the copy region's recovery points": 4.28,
    "AWS Backup: transfer to the copy region": 0.60,
    "ElastiCache Valkey: 2 x cache.t4g.micro": 21.02,            # 2 x 730 x 0.0144
    "ALB agent (internet-facing)": 18.40,                        # one ALB for the group
    "ALB agent: capacity units": 5.84,                           # 1 LCU x 730 x 0.008
    "ALB agent: public IPv4, one per zone": 7.30,                # 2 public subnets
    "EBS gp3: volume backups": 0.88,                             # 10 GB x 0.088
    "EBS gp3: monitoring volumes": 9.15,                         # (2 x 50 + 2 x 2) GB x 0.088
    "CloudWatch Logs: logs ingestion": 5.70,                     # 10 GB x 0.57
    "CloudWatch Logs: logs storage": 0.90,                       # 3 months x 10 GB x 0.03
    "KMS customer-managed keys": 2.00,
    "ECR storage: 10 images": 0.50,                              # 10 x 0.5 GB x 0.10
}


def test_each_priced_item_matches_the_hand_computed_figure() -> None:
    found = estimate(FIXTURE, "eu-west-1", USAGE, TODAY)
    assert {line.item: line.monthly for line in found.lines} == EXPECTED
    assert found.total == pytest.approx(sum(EXPECTED.values()), abs=0.01)
    basis = {line.item: line.basis for line in found.lines}
    assert basis["NAT gateways"] == "exact" and basis["NAT data processed"] == "assumption"
    assert found.prices_as_of == json.loads(PRICES.read_text())["as_of"]


def test_spot_nodes_and_extended_support_are_priced_as_such() -> None:
    spot = [Priced(r.type, r.name, {**r.props, "capacityType": "SPOT"})
            if r.type == "aws:eks/nodeGroup:NodeGroup" else r for r in FIXTURE]
    # 1.32 left standard support on 2026-03-23; a cluster allowed extended support pays 6x.
    old = [Priced("aws:eks/cluster:Cluster", "eks", {"version": "1.32",
                                                     "upgradePolicy": {"supportType":
                                                                       "EXTENDED"}}),
           *spot[1:]]
    lines = {line.item: line for line in estimate(old, "eu-west-1", USAGE, TODAY).lines}
    assert lines["EKS control plane 1.32 (extended support)"].monthly == 438.00  # 730 x 0.60
    nodes = lines["Nodes: 2 x m7i.large spot"]
    assert (nodes.unit_price, nodes.monthly, nodes.basis) == (0.04484, 65.47, "assumption")


def test_a_local_stack_costs_nothing_and_an_unknown_price_is_named() -> None:
    assert estimate(FIXTURE[10:14], "eu-west-1", USAGE, TODAY).lines == []  # no AWS resource
    with pytest.raises(UnknownPrice, match="no prices for region ap-south-2"):
        estimate(FIXTURE, "ap-south-2", USAGE, TODAY)
    unknown = [Priced("aws:rds/instance:Instance", "db", {"instanceClass": "db.x9.huge"})]
    with pytest.raises(UnknownPrice, match="no rds_postgres_hour price for db.x9.huge"):
        estimate(unknown, "eu-west-1", USAGE, TODAY)
    assert gigabytes("512Mi") == 0.5 and gigabytes("2Ti") == 2048


def test_the_shipped_stacks_meet_their_targets() -> None:
    dev, prod = stack_cost("dev"), stack_cost("prod")
    assert dev["monthly_total_usd"] <= 250 == dev["budget_usd"]
    assert prod["monthly_total_usd"] <= prod["budget_usd"]
    assert stack_cost("local")["lines"] == []
    # The README and docs/cost.md quote the totals: they stay true.
    for page in ("README.md", "docs/cost.md"):
        text = (ROOT / page).read_text()
        for estimate_ in (dev, prod):
            assert f"${estimate_['monthly_total_usd']:,.2f}" in text, page
    biggest = max(dev["lines"], key=lambda line: line["monthly"])
    assert biggest["item"].startswith("EKS control plane")
    # Prod is multi-AZ everything; the database is the biggest line.
    assert max(prod["lines"], key=lambda line: line["monthly"])["item"].startswith(
        "RDS Postgres db.r7g.large Multi-AZ")


def test_the_llm_spend_uses_the_services_own_price_table() -> None:
    from agent_service.core.config import Settings

    prices = Settings(environment="development").prices()
    shared = json.loads(LLM_PRICES.read_text())["usd_per_million_tokens"]
    assert {k: (Decimal(v["input"]), Decimal(v["output"])) for k, v in shared.items()} == prices
    llm = stack_cost("prod", llm_model="openai:gpt-4.1-mini")["llm"]
    # 20,000 runs a day x 30.4 days; (4,000 x 0.40 + 800 x 1.60) / 1e6 = $0.00288 a run
    assert (llm["runs_per_month"], llm["usd_per_run"], llm["monthly"]) == (
        608000, 0.00288, 1751.04)
    with pytest.raises(KeyError, match="openai:gpt-9"):
        stack_cost("prod", llm_model="openai:gpt-9")


def test_the_delta_between_two_renders_names_each_changed_line() -> None:
    base = stack_cost("dev")
    head = stack_cost("dev", {"natGateways": "per-az", "dbMultiAz": True})
    rows = {item: (old, new) for item, old, new in delta(base, head)}
    assert rows["NAT gateways"] == (35.04, 105.12)
    assert rows["Public IPv4 addresses (NAT)"] == (3.65, 10.95)
    assert "RDS Postgres db.t4g.micro Multi-AZ" in rows and rows[
        "RDS Postgres db.t4g.micro single-AZ"][1] == 0.0
    markdown = delta_markdown(base, head)
    assert "| NAT gateways | $35.04 | $105.12 | +$70.08 |" in markdown
    assert delta_markdown(base, base).endswith("No priced line changes.")
    # A base from before the estimate existed: every line is new.
    assert "| NAT gateways | $0.00 | $35.04 | +$35.04 |" in delta_markdown({}, base)
    assert "budget $250.00 for infrastructure" in table(base)


def test_the_budget_rule_passes_the_shipped_stacks_and_names_the_biggest_items(
        stacks: dict[str, Rendered]) -> None:
    for stack in ("local", "dev", "prod"):
        assert evaluate(stacks[stack]).violations["stack-within-budget"] == [], stack
    outcome = evaluate(stacks["dev"], {"all": "advisory", "stack-within-budget": {
        "monthlyBudgetUsd": 100, "usage": "dev"}})
    (violation,) = outcome.violations["stack-within-budget"]
    assert "over this stack's budget of $100.00" in violation.message
    assert "EKS control plane 1.35 (standard support) $73.00" in violation.message
    assert outcome.enforcement["stack-within-budget"] == "advisory"
    assert json.loads((ROOT / "policies/config/prod.json").read_text())["all"] == "mandatory"


def _price_list(usd: str) -> list[str]:
    return [json.dumps({"product": {"attributes": {}}, "terms": {"OnDemand": {"t": {
        "priceDimensions": {"d": {"unit": "Hrs", "pricePerUnit": {"USD": usd}}}}}}})]


def test_prices_are_refreshed_from_the_price_list_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("pricing", region_name="us-east-1")
    region = json.loads(PRICES.read_text())["regions"]["eu-west-1"]
    small: dict[str, Any] = {"as_of": "2026-01-01", "regions": {"eu-west-1": {
        **region, "ec2_hour": {"m7i.large": 1}, "rds_postgres_hour": {"db.t4g.micro": 1},
        "elasticache_valkey_hour": {"cache.t4g.micro": 1}}}}
    with Stubber(client) as stub:
        for service, size, usd in (("AmazonEC2", "m7i.large", "0.1150"),
                                   ("AmazonRDS", "db.t4g.micro", "0.0190"),
                                   ("AmazonElastiCache", "cache.t4g.micro", "0.0150")):
            stub.add_response("get_products", {"PriceList": _price_list(usd)}, {
                "ServiceCode": service, "MaxResults": 100, "Filters": [
                    *[{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in {
                        "AmazonEC2": {"operatingSystem": "Linux", "tenancy": "Shared",
                                      "preInstalledSw": "NA", "capacitystatus": "Used"},
                        "AmazonRDS": {"databaseEngine": "PostgreSQL",
                                      "deploymentOption": "Single-AZ"},
                        "AmazonElastiCache": {"cacheEngine": "Valkey"}}[service].items()],
                    {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-west-1"},
                    {"Type": "TERM_MATCH", "Field": "instanceType", "Value": size}]})
        for _ in range(2):
            stub.add_response("get_products", {"PriceList": _price_list("0.0900")})
        updated = refresh(small, client, ["eu-west-1"], TODAY)
    prices = updated["regions"]["eu-west-1"]
    assert prices["ec2_hour"] == {"m7i.large": 0.115}
    assert prices["elasticache_valkey_hour"] == {"cache.t4g.micro": 0.015}
    assert prices["ebs_gp3_gb_month"] == prices["rds_gp3_gb_month"] == 0.09
    assert updated["as_of"] == "2026-12-01" and len(updated["refreshed_from_api"]) == 5
    with pytest.raises(LookupError, match="expected one on-demand price"):
        on_demand_usd(_price_list("0.1") + _price_list("0.2"))


def test_the_preview_posts_the_cost_of_base_and_head_beside_the_diff() -> None:
    workflow = yaml.safe_load((ROOT / ".github/workflows/preview.yml").read_text())
    steps = workflow["jobs"]["preview"]["steps"]
    base = next(s for s in steps if s.get("with", {}).get("path") == "base")
    assert base["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    post = next(s for s in steps if s.get("name", "").startswith("Post the cost"))
    script = post["run"]
    assert "python -m cost --stack \"$STACK\" --json" in script
    assert "cost --diff" in script and "gh api" in script
    # Before the preview, which needs AWS credentials; the estimate needs none.
    assert steps.index(post) < next(i for i, s in enumerate(steps)
                                    if "pulumi/actions" in s.get("uses", ""))
    assert Path(ROOT / "Makefile").read_text().count("python -m cost") == 2


def test_an_alb_gateway_is_priced_as_the_ingress_it_replaces() -> None:
    ingress, gateway = (stack_cost("dev"), stack_cost("dev", {"edge": "gateway",
                                                              "gatewayClassName": "alb"}))
    def albs(cost: dict[str, Any]) -> dict[str, float]:
        return {line["item"]: line["monthly"] for line in cost["lines"]
                if line["item"].startswith("ALB")}

    assert albs(ingress) == {"ALB agent-api (internal)": 18.40,
                             "ALB agent-api: capacity units": 2.92}
    assert albs(gateway) == {"ALB gateway agent-service-api (internal)": 18.40,
                             "ALB gateway agent-service-api: capacity units": 2.92}
    assert gateway["monthly_total_usd"] == pytest.approx(ingress["monthly_total_usd"])
