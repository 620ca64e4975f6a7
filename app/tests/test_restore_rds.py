"""`agent-service restore rds`: the calls it makes to RDS, checked by botocore's Stubber against
the RDS API's own model (a misspelt parameter or a wrong type fails here), and the report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from agent_service.restore.rds import restore_to_point_in_time

SOURCE = "agent-platform-prod-postgres"
TARGET = "agent-platform-prod-postgres-pitr-0955"
LATEST = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def instance(identifier: str, **extra: Any) -> dict[str, Any]:
    return {
        "DBInstanceIdentifier": identifier, "DBInstanceClass": "db.r7g.large",
        "DBInstanceStatus": "available", "MultiAZ": True, "StorageType": "gp3",
        "IAMDatabaseAuthenticationEnabled": True,
        "DBSubnetGroup": {"DBSubnetGroupName": "database-subnets-1a2b"},
        "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-0123456789abcdef0",
                               "Status": "active"}],
        "DBParameterGroups": [{"DBParameterGroupName": "database-params-3c4d",
                               "ParameterApplyStatus": "in-sync"}],
        "TagList": [{"Key": "Stack", "Value": "prod"}, {"Key": "Owner", "Value": "platform"}],
        "LatestRestorableTime": LATEST, **extra}


@pytest.fixture
def rds(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return boto3.client("rds", region_name="eu-west-1")


def test_a_point_in_time_lands_beside_the_source_with_its_network_and_tags(rds: Any) -> None:
    when = datetime(2026, 12, 1, 9, 55, tzinfo=UTC)
    with Stubber(rds) as stub:
        stub.add_response("describe_db_instances", {"DBInstances": [instance(SOURCE)]},
                          {"DBInstanceIdentifier": SOURCE})
        stub.add_response("restore_db_instance_to_point_in_time", {}, {
            "SourceDBInstanceIdentifier": SOURCE, "TargetDBInstanceIdentifier": TARGET,
            "RestoreTime": when, "DBInstanceClass": "db.r7g.large",
            "DBSubnetGroupName": "database-subnets-1a2b",
            "VpcSecurityGroupIds": ["sg-0123456789abcdef0"],
            "DBParameterGroupName": "database-params-3c4d", "MultiAZ": True,
            "PubliclyAccessible": False, "StorageType": "gp3",
            "EnableIAMDatabaseAuthentication": True, "CopyTagsToSnapshot": True,
            "DeletionProtection": True,
            "Tags": [{"Key": "Stack", "Value": "prod"}, {"Key": "Owner", "Value": "platform"},
                     {"Key": "agent-platform/restored-from", "Value": SOURCE},
                     {"Key": "agent-platform/restored-to-time",
                      "Value": "2026-12-01T09:55:00+00:00"}]})
        available = instance(TARGET, Endpoint={
            "Address": f"{TARGET}.abc.eu-west-1.rds.amazonaws.com", "Port": 5432})
        # The waiter's poll, then the read of the endpoint.
        stub.add_response("describe_db_instances", {"DBInstances": [available]},
                          {"DBInstanceIdentifier": TARGET})
        stub.add_response("describe_db_instances", {"DBInstances": [available]},
                          {"DBInstanceIdentifier": TARGET})
        report = restore_to_point_in_time(SOURCE, TARGET, when, client=rds)
        stub.assert_no_pending_responses()
    assert report["endpoint"] == f"{TARGET}.abc.eu-west-1.rds.amazonaws.com"
    assert report["restore_time"] == "2026-12-01T09:55:00+00:00"
    assert report["available_seconds"] >= 0 and report["request_seconds"] >= 0
    assert f"pulumi config set agent-platform:dbRestoredInstance {TARGET}" in report["next"]


def test_latest_asks_rds_for_its_latest_restorable_time(rds: Any) -> None:
    with Stubber(rds) as stub:
        stub.add_response("describe_db_instances", {"DBInstances": [instance(SOURCE)]})
        restore = {"SourceDBInstanceIdentifier": SOURCE, "UseLatestRestorableTime": True}
        stub.add_response("restore_db_instance_to_point_in_time", {}, {
            **restore, **{k: v for k, v in _anything().items() if k not in restore}})
        report = restore_to_point_in_time(SOURCE, TARGET, None, client=rds, wait=False)
    assert report["restore_time"] == "latest" and "endpoint" not in report


def test_a_time_after_the_latest_restorable_one_is_refused_before_any_restore(rds: Any) -> None:
    with Stubber(rds) as stub:
        stub.add_response("describe_db_instances", {"DBInstances": [instance(SOURCE)]})
        with pytest.raises(ValueError, match="after the latest restorable time "
                                             "2026-12-01T10:00:00"):
            restore_to_point_in_time(SOURCE, TARGET, datetime(2026, 12, 1, 11, tzinfo=UTC),
                                     client=rds)
        stub.assert_no_pending_responses()


def _anything() -> dict[str, Any]:
    from botocore.stub import ANY

    return dict.fromkeys((
        "TargetDBInstanceIdentifier", "DBInstanceClass", "DBSubnetGroupName",
        "VpcSecurityGroupIds", "DBParameterGroupName", "MultiAZ", "PubliclyAccessible",
        "StorageType", "EnableIAMDatabaseAuthentication", "CopyTagsToSnapshot",
        "DeletionProtection", "Tags"), ANY)
