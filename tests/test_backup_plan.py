"""AWS Backup for the database (components/aws/backup.py): what the plan covers and how often,
the vaults and their lock, the role, the failure alerts, the `backups-meet-rpo` rule, and what
turning it on or changing it plans on a running stack."""

from __future__ import annotations

import json
from typing import Any

import pytest
from plan import plan, summary
from test_config import config_error
from test_day2 import assert_no_outage

from backup_rules import interval_hours
from harness import Rendered, render
from policy_runner import evaluate

PLAN = "aws:backup/plan:Plan"
VAULT = "aws:backup/vault:Vault"
COPY = {"backupCopyRegion": "eu-central-1"}


@pytest.fixture(scope="module")
def prod_with_copy() -> Rendered:
    return render("prod", {**COPY, "backupAlertEmail": "oncall@example.com"})


def rules(stack: Rendered) -> dict[str, dict[str, Any]]:
    return {rule["ruleName"]: rule for rule in stack.one(PLAN).inputs["rules"]}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_database_is_backed_up_hourly_and_daily(stacks: dict[str, Rendered],
                                                    stack: str) -> None:
    rendered = stacks[stack]
    database = rendered.one("aws:rds/instance:Instance")
    selection = rendered.one("aws:backup/selection:Selection")
    # The instance, by the ARN the instance reports.
    assert selection.inputs["resources"] == [f"arn:aws:service:eu-west-1:123456789012:"
                                             f"{database.name}"]
    assert database.urn in selection.dependency_urns
    hourly, daily = rules(rendered)["hourly"], rules(rendered)["daily"]
    assert interval_hours(hourly["schedule"]) == 1
    assert hourly["lifecycle"] == {"deleteAfter": 2}
    assert interval_hours(daily["schedule"]) == 24
    assert daily["lifecycle"] == {"deleteAfter": 7 if stack == "dev" else 35}
    vault = rendered.one(VAULT)
    assert {hourly["targetVaultName"], daily["targetVaultName"]} == {vault.name}
    # No copy unless a region is configured.
    assert "copyActions" not in hourly and len(rendered.of_type(VAULT)) == 1


def test_the_vault_is_encrypted_locked_and_protected(stacks: dict[str, Rendered]) -> None:
    prod = stacks["prod"]
    vault = prod.one(VAULT)
    key = prod.named("backup-key", "aws:kms/key:Key")
    assert vault.inputs["kmsKeyArn"] == "arn:aws:service:eu-west-1:123456789012:backup-key"
    assert key.inputs["enableKeyRotation"] is True
    assert vault.protect and key.protect
    # `pulumi destroy` leaves the vault, its lock and key, with every recovery point in it.
    lock_resource = prod.one("aws:backup/vaultLockConfiguration:VaultLockConfiguration")
    assert vault.retain_on_delete and key.retain_on_delete and lock_resource.retain_on_delete
    assert "forceDestroy" not in vault.inputs or vault.inputs["forceDestroy"] is False
    lock = prod.one("aws:backup/vaultLockConfiguration:VaultLockConfiguration").inputs
    # Governance: no grace period, so the lock can be lifted by a principal allowed to.
    assert lock["minRetentionDays"] == 1 and "changeableForDays" not in lock
    compliance = render("prod", {"backupVaultLock": "compliance"}).one(
        "aws:backup/vaultLockConfiguration:VaultLockConfiguration").inputs
    assert compliance["changeableForDays"] == 3
    assert not render("prod", {"backupVaultLock": "off"}).of_type(
        "aws:backup/vaultLockConfiguration:VaultLockConfiguration")


def test_a_copy_region_gets_every_recovery_point(prod_with_copy: Rendered) -> None:
    copy_vault = prod_with_copy.named("backup-copy-vault", VAULT)
    copy_key = prod_with_copy.named("backup-copy-key", "aws:kms/key:Key")
    assert copy_vault.inputs["region"] == copy_key.inputs["region"] == "eu-central-1"
    assert copy_vault.inputs["kmsKeyArn"].endswith(":backup-copy-key")
    assert copy_vault.protect
    for name, rule in rules(prod_with_copy).items():
        (copy,) = rule["copyActions"]
        assert copy["destinationVaultArn"].endswith(":backup-copy-vault"), name
        assert copy["lifecycle"] == rule["lifecycle"]
    locks = prod_with_copy.of_type("aws:backup/vaultLockConfiguration:VaultLockConfiguration")
    assert {lock.inputs.get("region") for lock in locks} == {None, "eu-central-1"}


def test_the_backup_role_is_trusted_by_aws_backup_and_scoped_to_rds(
        prod_with_copy: Rendered) -> None:
    role = prod_with_copy.named("backup-role", "aws:iam/role:Role").inputs
    (trust,) = json.loads(role["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "backup.amazonaws.com"}
    assert trust["Effect"] == "Allow" and "sts:AssumeRole" in trust["Action"]
    policy = json.loads(prod_with_copy.named("backup-role-policy").inputs["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    actions = {a for s in statements.values() for a in (
        s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert {a.split(":")[0] for a in actions} == {"rds", "tag", "backup", "kms"}
    assert not any(a.endswith("*") and a.split(":")[1] == "*" for a in actions)
    assert statements["RdsSnapshots"]["Resource"] == [
        "arn:aws:rds:*:123456789012:db:*", "arn:aws:rds:*:123456789012:snapshot:awsbackup:*"]
    assert sorted(statements["Vaults"]["Resource"]) == [
        "arn:aws:service:eu-west-1:123456789012:backup-copy-vault",
        "arn:aws:service:eu-west-1:123456789012:backup-vault"]
    assert statements["KeysThroughRds"]["Condition"] == {
        "StringLike": {"kms:ViaService": "rds.*.amazonaws.com"}}
    # The managed policy for every service's backups is not attached.
    assert not prod_with_copy.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") or \
        all("backup-role" not in r.name for r in prod_with_copy.of_type(
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment"))


def test_failed_jobs_alert_through_an_encrypted_topic(prod_with_copy: Rendered) -> None:
    rule = prod_with_copy.one("aws:cloudwatch/eventRule:EventRule").inputs
    assert json.loads(rule["eventPattern"]) == {
        "source": ["aws.backup"],
        "detail-type": ["Backup Job State Change", "Copy Job State Change"],
        "detail": {"state": ["FAILED", "ABORTED", "EXPIRED"]}}
    topic = prod_with_copy.one("aws:sns/topic:Topic")
    assert topic.inputs["kmsMasterKeyId"].endswith(":backup-key")
    target = prod_with_copy.one("aws:cloudwatch/eventTarget:EventTarget").inputs
    assert target["arn"] == f"{topic.name}-id" or target["arn"].endswith(topic.name)
    # EventBridge may publish, for this rule only, and encrypt with the key.
    topic_policy = json.loads(prod_with_copy.one("aws:sns/topicPolicy:TopicPolicy")
                              .inputs["policy"])["Statement"][0]
    assert topic_policy["Principal"] == {"Service": "events.amazonaws.com"}
    assert topic_policy["Condition"]["ArnEquals"]["aws:SourceArn"].endswith(":backup-job-failed")
    key_policy = json.loads(prod_with_copy.named("backup-key", "aws:kms/key:Key")
                            .inputs["policy"])
    events = next(s for s in key_policy["Statement"] if s["Sid"] == "EventBridgePublishesAlerts")
    assert events["Action"] == ["kms:GenerateDataKey*", "kms:Decrypt"]
    subscription = prod_with_copy.one("aws:sns/topicSubscription:TopicSubscription").inputs
    assert (subscription["protocol"], subscription["endpoint"]) == ("email", "oncall@example.com")


@pytest.mark.parametrize(("schedule", "hours"), [
    ("cron(0 * ? * * *)", 1), ("cron(15 */2 ? * * *)", 2), ("cron(0 6 ? * * *)", 24),
    ("cron(0 0,12 ? * * *)", 12), ("cron(0 1,2,20 ? * * *)", 18), ("rate(30 minutes)", 0.5),
    ("rate(1 hour)", 1), ("rate(2 days)", 48), ("cron(0 5 ? * MON *)", 168)])
def test_schedules_are_read_as_the_longest_gap_between_runs(schedule: str,
                                                             hours: float) -> None:
    assert interval_hours(schedule) == hours


def test_backups_meet_rpo_passes_shipped_stacks_and_fails_without_a_plan(
        stacks: dict[str, Rendered]) -> None:
    for stack in ("local", "dev", "prod"):
        assert evaluate(stacks[stack]).violations["backups-meet-rpo"] == [], stack
    (violation,) = evaluate(render("dev", {"awsBackup": False})).violations["backups-meet-rpo"]
    assert "in no AWS Backup plan" in violation.message
    assert violation.urn is not None and violation.urn.endswith("::database-postgres")
    # A stricter stack: a 30-minute recovery point is not met by hourly rules.
    outcome = evaluate(stacks["prod"], {"all": "mandatory",
                                        "backups-meet-rpo": {"maximumRpoHours": 0.5}})
    (violation,) = outcome.violations["backups-meet-rpo"]
    assert "every 1 h at best" in violation.message


def test_prod_cannot_turn_backups_off_or_keep_them_a_week() -> None:
    message = config_error("prod", awsBackup=False, backupRetentionDays=7,
                           backupCopyRegion="Frankfurt", backupVaultLock="strict")
    assert "agent-platform:awsBackup = false is invalid: prod requires true" in message
    assert "agent-platform:backupRetentionDays = 7 is invalid" in message
    assert "agent-platform:backupCopyRegion = \"Frankfurt\" is invalid" in message
    assert "agent-platform:backupVaultLock = \"strict\" is invalid: allowed values are off, " \
           "governance, compliance" in message


def test_turning_backups_on_for_a_running_stack_only_adds(stacks: dict[str, Rendered]) -> None:
    # prod refuses awsBackup false, so a dev stack shows it.
    steps = plan(render("dev", {"awsBackup": False}), stacks["dev"])
    assert set(summary(steps)) == {"create"}
    assert {step.resource.type for step in steps.values()} >= {PLAN, VAULT}


def test_changing_retention_or_adding_a_copy_region_changes_no_data(
        stacks: dict[str, Rendered], prod_with_copy: Rendered) -> None:
    retention = summary(plan(stacks["prod"], render("prod", {"backupRetentionDays": 90})))
    assert retention == {"update": {"Plan/backup-plan"}}
    copy = summary(plan(stacks["prod"], prod_with_copy))
    assert copy.keys() == {"create", "update"}
    assert "Vault/backup-copy-vault" in copy["create"]
    # The plan gains copy actions; the role may write to the new vault. Nothing else changes.
    assert copy["update"] == {"Plan/backup-plan", "RolePolicy/backup-role-policy"}


def test_serving_from_a_restored_instance_rolls_the_pods_and_keeps_the_old_one(
        stacks: dict[str, Rendered]) -> None:
    restored = "agent-platform-prod-postgres-pitr-0955"
    after = render("prod", {"dbRestoredInstance": restored})
    steps = plan(stacks["prod"], after)
    found = summary(steps)
    assert_no_outage(steps)
    assert "delete" not in found and "create" not in found
    # The stack's own instance is untouched; the service and its migration Job move over.
    assert not any(step.resource.type == "aws:rds/instance:Instance" for step in steps.values())
    assert {"Deployment/agent-api", "Deployment/agent-worker",
            "Selection/backup-database"} <= found["update"]
    # A new auto-named Secret holds the new URL (created before the old one goes), and the
    # migration Job runs again against the restored instance (already at the latest revision).
    # ... and, the pods' template having changed, a new canary release gate.
    assert found["replace"] == {"Job/agent-migrate", "Secret/agent-secrets",
                                "Job/agent-rollout-gate"}
    secret = next(r for r in after.of_type("kubernetes:core/v1:Secret")
                  if "DATABASE_URL" in (r.inputs.get("stringData") or {}))
    assert f"@{restored}.cxyz.eu-west-1.rds.amazonaws.com:5432/" in \
        secret.inputs["stringData"]["DATABASE_URL"]
    # AWS Backup covers the instance now serving as well.
    assert after.one("aws:backup/selection:Selection").inputs["resources"][1] == \
        f"arn:aws:rds:eu-west-1:123456789012:db:{restored}"


def test_a_rebuilt_stack_creates_its_database_from_a_recovery_point() -> None:
    point = "arn:aws:rds:eu-central-1:123456789012:snapshot:awsbackup:job-0a1b2c3d-4e5f"
    database = render("prod", {"dbRestoreSnapshot": point}).one(
        "aws:rds/instance:Instance").inputs
    assert database["snapshotIdentifier"] == point
    # The snapshot brings the database; the master user must be the one it was made with.
    assert "dbName" not in database and database["username"] == "agent"
    assert "dbRestoreSnapshot = \"not a snapshot!\" is invalid" in config_error(
        "prod", dbRestoreSnapshot="not a snapshot!")
