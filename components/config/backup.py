"""AWS Backup settings for the database (components/aws/backup.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from components.config.patterns import EMAIL
from components.config.reader import ConfigReader

VaultLock = Literal["off", "governance", "compliance"]
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
LOCKS: tuple[VaultLock, ...] = ("off", "governance", "compliance")


@dataclass(frozen=True)
class BackupSettings:
    enabled: bool
    retention_days: int
    """Days the daily recovery points are kept."""
    copy_region: str | None
    vault_lock: VaultLock
    alert_email: str | None


def read_backup(r: ConfigReader, prod: bool) -> BackupSettings:
    enabled = r.boolean("awsBackup")
    if prod and not enabled:
        r.fail("awsBackup", enabled, "prod requires true: the hourly recovery points outside "
                                     "the instance are what meets the 1-hour recovery point")
    retention = r.integer("backupRetentionDays", 2, 3650)
    if prod and retention < 14:
        r.fail("backupRetentionDays", retention, "prod keeps daily recovery points 14+ days")
    region = r.optional_matching("backupCopyRegion", _REGION,
                                 "an AWS region such as eu-central-1, or empty")
    lock = r.choice("backupVaultLock", LOCKS)
    email = r.optional_matching("backupAlertEmail", EMAIL,
                                "an address such as oncall@example.com, or empty")
    return BackupSettings(enabled, retention, region, lock, email)
