"""State that cannot be rebuilt is protected, and keeps its URN across refactors.

`tests/stateful_urns.json` lists the URN of every protected resource per stack, as released. A
URN is the resource's identity in the state: if a refactor renames or re-parents one without an
`aliases` entry, the engine plans a delete and a create, which for a database is data loss (or, with
`protect`, a blocked update). Renaming one is fine with an alias; a new stateful resource is added
to the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness import ROOT, STACKS, Rendered, Resource, render

SNAPSHOT = Path(__file__).with_name("stateful_urns.json")
STATEFUL_TYPES = {
    "aws:rds/instance:Instance", "aws:elasticache/replicationGroup:ReplicationGroup",
    "aws:eks/cluster:Cluster", "aws:kms/key:Key", "aws:ecr/repository:Repository",
    "aws:cloudwatch/logGroup:LogGroup", "kubernetes:apps/v1:StatefulSet",
    "aws:backup/vault:Vault",
}
ADMIN_A = "arn:aws:iam::123456789012:role/PlatformAdmin"
ADMIN_B = "arn:aws:iam::210987654321:user/ops/oncall"


def released() -> dict[str, list[str]]:
    return dict(json.loads(SNAPSHOT.read_text()))


def unaliased_changes(snapshot: Sequence[str], resources: Sequence[Resource]) -> list[str]:
    """Problems: released URNs nothing answers to, and protected resources not yet recorded."""
    current = {r.urn for r in resources}
    aliased = {alias: r.urn for r in resources for alias in r.aliases}
    problems = [f"{urn} is gone without an alias: the engine would delete it and create a new "
                "resource. Add `aliases=[...]` with the old name or parent."
                for urn in snapshot if urn not in current and urn not in aliased]
    known = set(snapshot)
    problems += [f"{r.urn} is new state: add its URN to {SNAPSHOT.relative_to(ROOT)}"
                 for r in resources if r.protect and r.urn not in known
                 and not known & set(r.aliases)]
    return problems


@pytest.fixture(scope="module")
def protected() -> dict[str, Rendered]:
    return {stack: render(stack, {"protectState": True}) for stack in STACKS}


@pytest.mark.parametrize("stack", STACKS)
def test_stateful_urns_are_stable(protected: dict[str, Rendered], stack: str) -> None:
    assert unaliased_changes(released()[stack], protected[stack].resources) == []


def test_a_rename_without_an_alias_is_caught(protected: dict[str, Rendered]) -> None:
    database = protected["prod"].named("database-postgres")
    renamed = Resource(database.type, "db", database.inputs, urn=database.urn.replace(
        "::database-postgres", "::db"), protect=True)
    others = [r for r in protected["prod"].resources if r is not database]
    problems = unaliased_changes(released()["prod"], [*others, renamed])
    assert len(problems) == 2 and "is gone without an alias" in problems[0]
    aliased = Resource(renamed.type, "db", renamed.inputs, urn=renamed.urn, protect=True,
                       aliases=(database.urn,))
    assert unaliased_changes(released()["prod"], [*others, aliased]) == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stateful_aws_resources_are_protected_by_default(stacks: dict[str, Rendered],
                                                         stack: str) -> None:
    stateful = [r for r in stacks[stack].resources if r.type in STATEFUL_TYPES]
    # prod runs Jaeger (a StatefulSet on a volume); dev has tracing off.
    expected = STATEFUL_TYPES if stack == "prod" else STATEFUL_TYPES - {
        "kubernetes:apps/v1:StatefulSet"}
    assert {r.type for r in stateful} == expected
    assert all(r.protect for r in stateful), [r.urn for r in stateful if not r.protect]


def test_local_data_stores_are_protected_when_asked(protected: dict[str, Rendered]) -> None:
    local = protected["local"]
    for name in ("data-postgres", "data-valkey"):
        assert local.named(name, "kubernetes:apps/v1:StatefulSet").protect
    # Deleting the namespace would delete its PVCs; a new password would lock the service out
    # of a database initialised with the old one.
    assert local.named("data-namespace").protect
    assert local.named("data-postgres-password").protect


@pytest.mark.parametrize("stack", STACKS)
def test_protect_state_false_lifts_every_protection(stack: str) -> None:
    lifted = render(stack, {"protectState": False})
    assert not [r.urn for r in lifted.resources if r.protect]


def test_the_local_stack_file_opts_out_for_make_destroy(stacks: dict[str, Rendered]) -> None:
    assert not [r.urn for r in stacks["local"].resources if r.protect]


def access_entries(rendered: Rendered) -> Mapping[str, Any]:
    return {r.inputs["principalArn"]: r
            for r in rendered.of_type("aws:eks/accessEntry:AccessEntry")}


def test_access_entries_are_named_by_principal_not_position() -> None:
    both = access_entries(render("prod", {"adminPrincipalArns": [ADMIN_A, ADMIN_B]}))
    assert both[ADMIN_A].name == "cluster-admin-123456789012-role-PlatformAdmin"
    assert both[ADMIN_B].name == "cluster-admin-210987654321-user-ops-oncall"
    # Removing the first admin leaves the second one's identity, hence its entry, untouched.
    only_b = access_entries(render("prod", {"adminPrincipalArns": [ADMIN_B]}))
    assert only_b[ADMIN_B].urn == both[ADMIN_B].urn
    # Stacks released with positional names move over through aliases.
    assert both[ADMIN_B].aliases == (both[ADMIN_B].urn.replace(both[ADMIN_B].name,
                                                               "cluster-admin-1"),)


def test_policy_attachments_are_named_by_policy(stacks: dict[str, Rendered]) -> None:
    attachments = stacks["prod"].of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    cni = [a for a in attachments if a.inputs["policyArn"].endswith("/AmazonEKS_CNI_Policy")]
    assert [a.name for a in cni] == ["cluster-vpc-cni-irsa-AmazonEKS_CNI_Policy"]
    assert cni[0].aliases == (cni[0].urn.replace(cni[0].name, "cluster-vpc-cni-irsa-0"),)
