"""`nodeAutoscaler: karpenter` (components/aws/karpenter.py): the node pools and node class
against the pinned release's own CRD schemas, the controller's AWS side, where the service's pods
go, the policy, and what switching a running stack plans."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from crd_validation import crd_validator
from plan import plan, summary

from components.aws.karpenter import KARPENTER_VERSION, controller_policy
from harness import ROOT, Rendered, render
from policy_runner import evaluate

CRDS = ROOT / "tests" / "crd_schemas" / "karpenter"
KARPENTER = {"nodeAutoscaler": "karpenter"}
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"


@pytest.fixture(scope="module")
def prod() -> Rendered:
    return render("prod", KARPENTER)


def schema(file: str) -> jsonschema.Draft7Validator:
    return crd_validator([CRDS / KARPENTER_VERSION / file], "v1")


def test_the_vendored_crds_are_the_pinned_release() -> None:
    assert [p.name for p in CRDS.iterdir() if p.is_dir()] == [KARPENTER_VERSION]


@pytest.mark.parametrize(("type_", "file"), [
    (NODE_POOL, "karpenter.sh_nodepools.yaml"),
    (NODE_CLASS, "karpenter.k8s.aws_ec2nodeclasses.yaml")])
def test_pools_and_node_class_are_valid_for_the_pinned_release(
        prod: Rendered, type_: str, file: str) -> None:
    validator = schema(file)
    objects = prod.of_type(type_)
    assert objects
    for obj in objects:
        # The mocks name every resource's id `<logical name>-id`; the schema wants AWS's shapes.
        spec = json.loads(json.dumps(obj.inputs["spec"]).replace(
            "network-private-eu-west-1", "subnet-0a1b2c3d4e5f6a7b").replace(
            "cluster-eks-sg-id", "sg-0a1b2c3d4e5f6a7b8"))
        body = {"apiVersion": obj.inputs["apiVersion"], "kind": obj.inputs["kind"],
                "metadata": obj.inputs["metadata"], "spec": spec}
        assert [e.message for e in validator.iter_errors(body)] == [], obj.name
    # The schema catches what the API server would refuse: here, a mock id's shape.
    assert list(validator.iter_errors({**body, "spec": obj.inputs["spec"]})) or \
        type_ == NODE_POOL


def test_the_node_pools_split_the_service_by_capacity(prod: Rendered) -> None:
    pools = {p.inputs["metadata"]["name"]: p.inputs["spec"] for p in prod.of_type(NODE_POOL)}
    assert set(pools) == {"api", "workers"}

    def capacity(pool: str) -> list[str]:
        requirements = pools[pool]["template"]["spec"]["requirements"]
        return next(r["values"] for r in requirements
                    if r["key"] == "karpenter.sh/capacity-type")

    assert capacity("api") == ["on-demand"]
    assert capacity("workers") == ["spot", "on-demand"]
    assert capacity("workers") == ["spot", "on-demand"]
    off = render("prod", {**KARPENTER, "workerNodePoolSpot": False}).of_type(NODE_POOL)
    assert all("spot" not in json.dumps(p.inputs["spec"]) for p in off)
    assert (pools["api"]["limits"], pools["workers"]["limits"]) == ({"cpu": "64"},
                                                                     {"cpu": "128"})
    # One worker node at a time, after its running runs (do-not-disrupt) or 3 h.
    assert pools["workers"]["disruption"]["budgets"] == [{"nodes": "1"}]
    assert pools["workers"]["template"]["spec"]["terminationGracePeriod"] == "3h"
    deployments = {d.name: d.inputs["spec"]["template"]["spec"]
                   for d in prod.of_type("kubernetes:apps/v1:Deployment")}
    assert deployments["agent-api"]["nodeSelector"] == {"agent-platform/node-pool": "api"}
    assert deployments["agent-worker"]["nodeSelector"] == {
        "agent-platform/node-pool": "workers"}


def test_the_node_class_is_hardened_and_placed_by_id(prod: Rendered) -> None:
    spec = prod.one(NODE_CLASS).inputs["spec"]
    assert spec["metadataOptions"]["httpTokens"] == "required"
    assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert spec["blockDeviceMappings"][0]["ebs"]["encrypted"] is True
    subnets = {s.name + "-id" for s in prod.of_type("aws:ec2/subnet:Subnet")
               if "-private-" in s.name}
    assert {term["id"] for term in spec["subnetSelectorTerms"]} == subnets
    assert spec["role"] == "karpenter-node-role"
    access = prod.one("aws:eks/accessEntry:AccessEntry").inputs
    assert access["type"] == "EC2_LINUX"


def test_the_controller_runs_on_the_node_group_with_a_scoped_role(prod: Rendered) -> None:
    releases = {r.name: r for r in prod.of_type("kubernetes:helm.sh/v3:Release")}
    controller = releases["karpenter-karpenter"].inputs
    assert controller["chart"] == "oci://public.ecr.aws/karpenter/karpenter"
    assert controller["version"] == releases["karpenter-karpenter-crd"].inputs["version"] == \
        KARPENTER_VERSION
    assert controller["skipCrds"] is True
    assert "karpenter-karpenter-crd" in " ".join(releases["karpenter-karpenter"].dependency_urns)
    values = controller["values"]
    assert values["settings"]["clusterName"] == "agent-platform-prod"
    terms = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["key"] == \
        "eks.amazonaws.com/nodegroup"
    # cluster-autoscaler is not installed beside it.
    assert "addons-cluster-autoscaler" not in releases
    events = {json.loads(r.inputs["eventPattern"])["detail-type"][0]
              for r in prod.of_type("aws:cloudwatch/eventRule:EventRule")
              if r.name.startswith("karpenter-")}
    assert events == {"AWS Health Event", "EC2 Spot Instance Interruption Warning",
                      "EC2 Instance Rebalance Recommendation",
                      "EC2 Instance State-change Notification"}
    policy = controller_policy("c1", "eu-west-1", "123456789012", "arn:q", "arn:role/n")
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["AllowScopedDeletion"]["Condition"]["StringEquals"] == {
        "aws:ResourceTag/kubernetes.io/cluster/c1": "owned"}
    assert statements["AllowPassingInstanceRole"]["Resource"] == "arn:role/n"


def test_node_pools_without_limits_are_refused(prod: Rendered) -> None:
    assert evaluate(prod).violations["karpenter-node-pools-have-limits"] == []
    pool = prod.of_type(NODE_POOL)[0]
    unlimited = type(pool)(pool.type, pool.name, {**pool.inputs, "spec": {
        k: v for k, v in pool.inputs["spec"].items() if k != "limits"}}, urn=pool.urn)
    others = [r for r in prod.resources if r is not pool]
    outcome = evaluate(Rendered("prod", [*others, unlimited]))
    (violation,) = outcome.violations["karpenter-node-pools-have-limits"]
    assert "no CPU limit" in violation.message


def test_switching_a_running_stack_to_karpenter(stacks: dict[str, Rendered],
                                                prod: Rendered) -> None:
    steps = plan(stacks["prod"], prod)
    found = summary(steps)
    # Only cluster-autoscaler (its release, role and association) goes; the service's pods
    # roll in place onto the new pools.
    assert {s.split("/", 1)[1] for s in found.get("delete", set())} <= {
        "addons-cluster-autoscaler", "addons-cluster-autoscaler-pod-identity",
        "addons-cluster-autoscaler-pod-identity-inline"}
    # The migration Job's pod template gains the API pool's selector: a new auto-named Job.
    assert found["replace"] == {"Job/agent-migrate", "Job/agent-rollout-gate"}
    assert "replace-delete-first" not in found
    assert {"Deployment/agent-api", "Deployment/agent-worker"} <= found["update"]
    assert {"NodePool/karpenter-api-pool", "NodePool/karpenter-workers-pool",
            "EC2NodeClass/karpenter-node-class"} <= found["create"]
    assert Path(ROOT / "docs" / "operations.md").read_text().count("nodeAutoscaler") >= 1
