"""AWS Backup for the database: recovery points outside the instance's own lifecycle.

RDS's automated backups already give point-in-time restore within the region (about five
minutes of recovery point), but they live and die with the instance and its region. This plan
adds what they cannot:
  - hourly snapshots (kept `HOURLY_KEEP_DAYS`) and daily ones (kept `backupRetentionDays`) in a
    KMS-encrypted vault, so a deleted instance or a region loss costs at most an hour;
  - optionally a copy of each into a vault in `backupCopyRegion`;
  - a vault lock, so neither a mistake nor a stolen credential deletes recovery points early;
  - an alert (EventBridge to an SNS topic) when a backup or copy job fails, aborts or expires.
Snapshot rules, not AWS Backup's continuous backup: continuous backup takes over the instance's
backup retention, which the program sets (`dbBackupRetentionDays`) and would then fight over.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.service_account_roles import service_trust_policy
from components.config.backup import VaultLock

HOURLY_SCHEDULE = "cron(0 * ? * * *)"
# After the RDS backup window (03:00-04:00) and the Sunday maintenance window (04:30-05:30).
DAILY_SCHEDULE = "cron(0 6 ? * * *)"
HOURLY_KEEP_DAYS = 2
# A compliance lock becomes immutable after this grace period (the minimum AWS allows).
COMPLIANCE_GRACE_DAYS = 3
FAILED_STATES = ["FAILED", "ABORTED", "EXPIRED"]
# What AWS Backup needs to snapshot and copy RDS instances, from the RDS statements of
# AWSBackupServiceRolePolicyForBackup rather than that whole policy (every service's data).
RDS_ACTIONS = ["rds:AddTagsToResource", "rds:ListTagsForResource", "rds:DescribeDBInstances",
               "rds:DescribeDBSnapshots", "rds:CreateDBSnapshot", "rds:CopyDBSnapshot",
               "rds:DeleteDBSnapshot"]


@dataclass(frozen=True, kw_only=True)
class DatabaseBackupArgs:
    database_arns: Sequence[pulumi.Input[str]]
    """The RDS instances to back up: the stack's, and the restored one it serves from."""
    retention_days: int
    """Days the daily recovery points (and their copies) are kept."""
    copy_region: str | None
    """A second region to copy every recovery point to, or None."""
    vault_lock: VaultLock
    alert_email: str | None
    """Subscribed to the failure topic (AWS asks the address to confirm), or None."""
    tags: Mapping[str, str]
    protect: bool
    """Refuse to delete the vaults and keys (they hold or unlock every recovery point)."""


class DatabaseBackup(pulumi.ComponentResource):
    """An AWS Backup plan for the RDS instance, its vaults, role and failure alerts."""

    vault_arn: pulumi.Output[str]
    alert_topic_arn: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseBackupArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:backup:DatabaseBackup", name, None, opts)
        self._name = name
        self._args = args
        self._account = aws.get_caller_identity_output().account_id
        # The vaults, their locks and keys outlive the stack: `pulumi destroy` leaves them,
        # with every recovery point until its retention ends, to rebuild the stack from.
        self._kept = pulumi.ResourceOptions(parent=self, protect=args.protect,
                                            retain_on_delete=True)
        vault, key = self._vault(name, region=None)
        copy = self._vault(f"{name}-copy", region=args.copy_region)[0] \
            if args.copy_region else None
        self.vault_arn = vault.arn
        role = self._role(copy)
        plan = aws.backup.Plan(
            f"{name}-plan",
            rules=[self._rule("hourly", HOURLY_SCHEDULE, HOURLY_KEEP_DAYS, vault, copy),
                   self._rule("daily", DAILY_SCHEDULE, args.retention_days, vault, copy)],
            tags=dict(args.tags), opts=pulumi.ResourceOptions(parent=self))
        aws.backup.Selection(
            f"{name}-database", plan_id=plan.id, iam_role_arn=role.arn,
            resources=list(args.database_arns), opts=pulumi.ResourceOptions(parent=self))
        self.alert_topic_arn = self._alerts(name, key)
        self.register_outputs({"vault_arn": self.vault_arn,
                               "alert_topic_arn": self.alert_topic_arn})

    def _key(self, name: str, region: str | None, description: str) -> aws.kms.Key:
        # The account's administrators manage the key; EventBridge may encrypt the alerts it
        # publishes to the topic (an AWS-managed SNS key would refuse it).
        policy = self._account.apply(lambda account: json.dumps({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "AccountAdministers", "Effect": "Allow",
                 "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                 "Action": "kms:*", "Resource": "*"},
                {"Sid": "EventBridgePublishesAlerts", "Effect": "Allow",
                 "Principal": {"Service": "events.amazonaws.com"},
                 "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": "*"},
            ]}))
        return aws.kms.Key(
            name, description=description, enable_key_rotation=True,
            deletion_window_in_days=30, policy=policy, region=region, tags=dict(self._args.tags),
            opts=self._kept)

    def _vault(self, name: str, region: str | None) -> tuple[aws.backup.Vault, aws.kms.Key]:
        key = self._key(f"{name}-key", region, "agent-platform backup vault and alerts")
        vault = aws.backup.Vault(
            f"{name}-vault", kms_key_arn=key.arn, region=region, tags=dict(self._args.tags),
            opts=self._kept)
        if self._args.vault_lock != "off":
            # Governance: only principals allowed backup:DeleteBackupVaultLockConfiguration can
            # lift it. Compliance: nobody, once the grace period has passed.
            aws.backup.VaultLockConfiguration(
                f"{name}-lock", backup_vault_name=vault.name, min_retention_days=1,
                changeable_for_days=COMPLIANCE_GRACE_DAYS
                if self._args.vault_lock == "compliance" else None,
                region=region, opts=self._kept)
        return vault, key

    def _rule(self, rule: str, schedule: str, keep_days: int, vault: aws.backup.Vault,
              copy: aws.backup.Vault | None) -> aws.backup.PlanRuleArgs:
        lifecycle = aws.backup.PlanRuleLifecycleArgs(delete_after=keep_days)
        return aws.backup.PlanRuleArgs(
            rule_name=rule, target_vault_name=vault.name, schedule=schedule,
            schedule_expression_timezone="Etc/UTC", start_window=60,
            completion_window=120 if rule == "hourly" else 360, lifecycle=lifecycle,
            copy_actions=[aws.backup.PlanRuleCopyActionArgs(
                destination_vault_arn=copy.arn,
                lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(delete_after=keep_days))]
            if copy else None,
            recovery_point_tags={**self._args.tags, "agent-platform/backup-rule": rule})

    def _role(self, copy: aws.backup.Vault | None) -> aws.iam.Role:
        name = self._name
        role = aws.iam.Role(
            f"{name}-role", description="AWS Backup: snapshots and copies of the database",
            assume_role_policy=service_trust_policy("backup.amazonaws.com"),
            tags=dict(self._args.tags), opts=pulumi.ResourceOptions(parent=self))
        vaults = [self.vault_arn, *([copy.arn] if copy else [])]
        policy = pulumi.Output.all(self._account, *vaults).apply(lambda values: json.dumps({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "RdsSnapshots", "Effect": "Allow", "Action": RDS_ACTIONS,
                 "Resource": [f"arn:aws:rds:*:{values[0]}:db:*",
                              f"arn:aws:rds:*:{values[0]}:snapshot:awsbackup:*"]},
                {"Sid": "FindResources", "Effect": "Allow", "Action": "tag:GetResources",
                 "Resource": "*"},
                {"Sid": "Vaults", "Effect": "Allow",
                 "Action": ["backup:DescribeBackupVault", "backup:CopyIntoBackupVault"],
                 "Resource": list(values[1:])},
                # Encrypted snapshots are copied with the destination region's key, through RDS.
                {"Sid": "KeysThroughRds", "Effect": "Allow",
                 "Action": ["kms:DescribeKey", "kms:CreateGrant", "kms:GenerateDataKey*",
                            "kms:Decrypt", "kms:Encrypt", "kms:ReEncrypt*"],
                 "Resource": f"arn:aws:kms:*:{values[0]}:key/*",
                 "Condition": {"StringLike": {"kms:ViaService": "rds.*.amazonaws.com"}}},
            ]}))
        aws.iam.RolePolicy(f"{name}-role-policy", role=role.id, policy=policy,
                           opts=pulumi.ResourceOptions(parent=role))
        return role

    def _alerts(self, name: str, key: aws.kms.Key) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        topic = aws.sns.Topic(f"{name}-alerts", kms_master_key_id=key.arn,
                              tags=dict(self._args.tags), opts=child)
        rule = aws.cloudwatch.EventRule(
            f"{name}-job-failed", description="An AWS Backup backup or copy job did not complete",
            event_pattern=json.dumps({
                "source": ["aws.backup"],
                "detail-type": ["Backup Job State Change", "Copy Job State Change"],
                "detail": {"state": FAILED_STATES}}),
            tags=dict(self._args.tags), opts=child)
        aws.sns.TopicPolicy(f"{name}-alerts-policy", arn=topic.arn, policy=pulumi.Output.all(
            topic.arn, rule.arn).apply(lambda arns: json.dumps({
                "Version": "2012-10-17", "Statement": [{
                    "Sid": "BackupJobEvents", "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sns:Publish", "Resource": arns[0],
                    "Condition": {"ArnEquals": {"aws:SourceArn": arns[1]}}}]})),
            opts=child)
        aws.cloudwatch.EventTarget(f"{name}-job-failed-alert", rule=rule.name, arn=topic.arn,
                                   opts=child)
        if self._args.alert_email:
            aws.sns.TopicSubscription(f"{name}-alerts-email", topic=topic.arn, protocol="email",
                                      endpoint=self._args.alert_email, opts=child)
        return topic.arn
