"""The Postgres keys, RDS's and its backups' (part of the table in keys.py, in its order)."""

from __future__ import annotations

from components.config.key import Key

DATABASE_KEYS: tuple[Key, ...] = (
    Key("dbInstanceClass", "string", "RDS instance class, e.g. `db.r7g.large`.", "db.r7g.large"),
    Key("dbEngineVersion", "string",
        "PostgreSQL major version (minor upgrades are applied automatically).", "17"),
    Key("dbAllocatedStorageGb", "integer", "Initial gp3 storage, GiB (20 or more).", 50),
    Key("dbMaxAllocatedStorageGb", "integer",
        "Storage autoscaling ceiling, GiB (at least dbAllocatedStorageGb).", 500),
    Key("dbMultiAz", "boolean", "Synchronous standby in a second zone. prod requires true.", True),
    Key("dbDeletionProtection", "boolean",
        "Refuse to delete the database. prod requires true.", True),
    Key("dbFinalSnapshot", "boolean",
        "Take a snapshot when the database is deleted. prod requires true.", True),
    Key("dbBackupRetentionDays", "integer",
        "Automated backup retention, 1 to 35 days. prod requires 14 or more.", 14),
    Key("dbPerformanceInsights", "boolean", "Enable RDS Performance Insights.", True),
    Key("dbRestoredInstance", "string",
        "Serve from this RDS instance (one `agent-service restore rds` made) instead of the "
        "stack's own, which stays, protected. Empty: the stack's own (docs/runbooks.md).", ""),
    Key("dbRestoreSnapshot", "string",
        "Create the database from this snapshot (ARN or id; an AWS Backup recovery point of "
        "RDS is one): a stack rebuilt in another region or after a destroy. Read when the "
        "instance is created; on a running stack it is a replacement, which protection refuses.",
        ""),
    Key("awsBackup", "boolean",
        "AWS Backup plan for the database: hourly recovery points (kept 2 days) and daily ones "
        "in a KMS-encrypted, locked vault, with failure alerts. prod requires true.", True),
    Key("backupRetentionDays", "integer",
        "Days AWS Backup keeps the daily recovery points (and their copies), 2 to 3650. prod "
        "requires 14 or more.", 35),
    Key("backupCopyRegion", "string",
        "Copy every recovery point to a vault in this region (region loss). Empty: no copy.", ""),
    Key("backupVaultLock", "string",
        "`governance` (lifted only by principals allowed to), `compliance` (immutable after 3 "
        "days: irreversible) or `off`.", "governance"),
    Key("backupAlertEmail", "string",
        "Address subscribed to the backup-failure topic (AWS asks it to confirm). Empty: "
        "subscribe your own endpoint to the `backup_alert_topic_arn` output.", ""),
    Key("dbName", "string", "Database created for the service.", "agent"),
    Key("dbUsername", "string", "Master user name (not `postgres`, `admin` or `rdsadmin`).",
        "agent"),
)
