"""Restore the stack's RDS instance to a point in time, into a new instance beside it.

RDS keeps every change for `dbBackupRetentionDays`, so any moment in that window can be
restored, to about five minutes before now. The new instance gets the source's network, security
groups, parameter group, class, redundancy and tags, so the cluster reaches it exactly as it
reaches the source and the service's credentials work unchanged; the source is not touched.
Then `pulumi config set agent-platform:dbRestoredInstance <target>` and `pulumi up` move the
service to it (docs/runbooks.md).

Needs boto3 (`pip install './app[aws]'`, which `make venv` installs) and AWS credentials
allowed rds:DescribeDBInstances, rds:RestoreDBInstanceToPointInTime and rds:AddTagsToResource.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

WAIT_DELAY_SECONDS = 30
# RDS restores take minutes to an hour; past an hour the 30-minute objective is already lost
# and the operator is better told so than left waiting.
WAIT_ATTEMPTS = 120


def restore_request(source: dict[str, Any], target: str, restore_time: datetime | None,
                    tags: list[dict[str, str]]) -> dict[str, Any]:
    """The RestoreDBInstanceToPointInTime call for `source` (a DescribeDBInstances entry)."""
    request: dict[str, Any] = {
        "SourceDBInstanceIdentifier": source["DBInstanceIdentifier"],
        "TargetDBInstanceIdentifier": target,
        "DBInstanceClass": source["DBInstanceClass"],
        "DBSubnetGroupName": source["DBSubnetGroup"]["DBSubnetGroupName"],
        "VpcSecurityGroupIds": [group["VpcSecurityGroupId"]
                                for group in source["VpcSecurityGroups"]],
        "DBParameterGroupName": source["DBParameterGroups"][0]["DBParameterGroupName"],
        "MultiAZ": source["MultiAZ"],
        "PubliclyAccessible": False,
        "StorageType": source["StorageType"],
        "EnableIAMDatabaseAuthentication": source.get("IAMDatabaseAuthenticationEnabled", False),
        "CopyTagsToSnapshot": True,
        "DeletionProtection": True,
        "Tags": tags,
    }
    if restore_time is None:
        request["UseLatestRestorableTime"] = True
    else:
        request["RestoreTime"] = restore_time
    return request


def restore_to_point_in_time(source_id: str, target_id: str, restore_time: datetime | None, *,
                             client: Any, wait: bool = True) -> dict[str, Any]:
    """Starts the restore, waits until the new instance is available, and reports what it did
    and how long each step took. `restore_time` None: the latest restorable time."""
    started = time.perf_counter()
    (source,) = client.describe_db_instances(DBInstanceIdentifier=source_id)["DBInstances"]
    latest = source.get("LatestRestorableTime")
    if restore_time is not None and latest is not None and restore_time > latest:
        raise ValueError(f"--time {restore_time.isoformat()} is after the latest restorable "
                         f"time {latest.isoformat()}: choose an earlier time or --latest")
    tags = [tag for tag in source.get("TagList", [])
            if not tag["Key"].startswith(("aws:", "agent-platform/restored"))]
    tags += [{"Key": "agent-platform/restored-from", "Value": source_id},
             {"Key": "agent-platform/restored-to-time",
              "Value": restore_time.isoformat() if restore_time else "latest"}]
    client.restore_db_instance_to_point_in_time(
        **restore_request(source, target_id, restore_time, tags))
    requested = time.perf_counter()
    report: dict[str, Any] = {
        "source": "rds-point-in-time", "source_instance": source_id, "target_instance": target_id,
        "restore_time": restore_time.isoformat() if restore_time else "latest",
        "request_seconds": round(requested - started, 3)}
    if not wait:
        return report
    client.get_waiter("db_instance_available").wait(
        DBInstanceIdentifier=target_id,
        WaiterConfig={"Delay": WAIT_DELAY_SECONDS, "MaxAttempts": WAIT_ATTEMPTS})
    (restored,) = client.describe_db_instances(DBInstanceIdentifier=target_id)["DBInstances"]
    report.update({
        "endpoint": restored["Endpoint"]["Address"], "port": restored["Endpoint"]["Port"],
        "available_seconds": round(time.perf_counter() - requested, 3),
        "next": [f"agent-service restore verify --database-url <the service's DATABASE_URL "
                 f"with host {restored['Endpoint']['Address']}> (from inside the cluster)",
                 f"pulumi config set agent-platform:dbRestoredInstance {target_id}",
                 "pulumi up"]})
    return report
