"""Settings of the platform under the service: network, EKS, Postgres, Valkey, image, local stack.

Each reader takes the declared keys of its part from a `ConfigReader` and applies the rules of
that part (shapes, ranges, and what prod refuses), recording every problem on the reader.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal, cast

from components.config.patterns import IAM_ROLE, QUANTITY
from components.config.reader import ConfigReader
from components.versions import KUBERNETES_VERSIONS

NatMode = Literal["single", "per-az"]
CapacityType = Literal["ON_DEMAND", "SPOT"]

LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
PROD_LOG_TYPES = ("api", "audit", "authenticator")
RESERVED_DB_USERS = ("postgres", "admin", "rdsadmin", "root")

_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[0-9]*[a-z0-9]+$")
_DB_CLASS = re.compile(r"^db\.[a-z][a-z0-9-]*\.[0-9]*[a-z0-9]+$")
_CACHE_TYPE = re.compile(r"^cache\.[a-z][a-z0-9-]*\.[0-9]*[a-z0-9]+$")
_IAM_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$")
_GRAVITON = re.compile(r"^[a-z]+\d+g")
_RDS_ID = re.compile(r"^[a-z](?!.*--)[a-z0-9-]{0,62}(?<!-)$")
_SNAPSHOT = re.compile(r"^(arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:snapshot:)?[a-zA-Z][\w:-]{0,254}$")
_SQL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_MAJOR_OR_MINOR = re.compile(r"^\d+(\.\d+)?$")
_MAJOR_MINOR = re.compile(r"^\d+\.\d+$")
_REGISTRY = re.compile(r"^[a-z0-9.-]+(:\d{1,5})?(/[a-z0-9._/-]+)?$")
# An image reference with an explicit tag or digest; `latest` is refused separately.
# A registry may carry a port (localhost:5001/agent-service).
_PINNED_IMAGE = re.compile(
    r"^[a-z0-9./_-]+(:\d{1,5}/[a-z0-9./_-]+)?(:[\w.-]+)?(@sha256:[a-f0-9]{64})?$")
_DIGEST = re.compile(r"@sha256:[a-f0-9]{64}$")

# Five cron fields of digits, `*`, `/`, `,` and `-` (Kubernetes checks the rest).
_CRON = re.compile(r"^[\d*/,-]+( [\d*/,-]+){4}$")

@dataclass(frozen=True)
class NetworkSettings:
    vpc_cidr: str
    az_count: int
    nat_gateways: NatMode


@dataclass(frozen=True)
class ClusterSettings:
    kubernetes_version: str
    endpoint_public_access: bool
    public_access_cidrs: tuple[str, ...]
    admin_principal_arns: tuple[str, ...]
    kubeconfig_role_arn: str | None
    log_types: tuple[str, ...]
    node_instance_types: tuple[str, ...]
    node_capacity_type: CapacityType
    node_min_size: int
    node_desired_size: int
    node_max_size: int
    node_disk_size_gb: int


@dataclass(frozen=True)
class DatabaseSettings:
    instance_class: str
    engine_version: str
    allocated_storage_gb: int
    max_allocated_storage_gb: int
    multi_az: bool
    deletion_protection: bool
    final_snapshot: bool
    backup_retention_days: int
    performance_insights: bool
    name: str
    username: str
    restored_instance: str | None = None
    """An instance `agent-service restore rds` made, served instead of the stack's own."""
    restore_snapshot: str | None = None
    """A snapshot (ARN or id) the instance is created from: a stack rebuilt elsewhere."""


@dataclass(frozen=True)
class CacheSettings:
    node_type: str
    engine_version: str
    nodes: int
    snapshot_retention_days: int


@dataclass(frozen=True)
class ImageSettings:
    platform: str
    retain_count: int
    local_registry: str | None
    ref: str | None
    """A prebuilt image to deploy instead of building `app/`."""


@dataclass(frozen=True)
class LocalSettings:
    kube_context: str | None
    storage_class: str | None
    volume_size: str
    postgres_image: str
    redis_image: str
    backup_schedule: str = "0 * * * *"
    backup_keep: int = 48
    """Dumps kept; 0: no backups."""
    backup_volume_size: str = "10Gi"


def _bad_cidrs(values: tuple[str, ...]) -> list[str]:
    bad = []
    for value in values:
        try:
            ipaddress.ip_network(value, strict=True)
        except ValueError:
            bad.append(value)
    return bad


def _read_image_ref(r: ConfigReader, prod: bool) -> str | None:
    ref = r.optional_string("imageRef")
    if ref is None:
        return None
    name = ref.split("@", 1)[0].rsplit("/", 1)[-1]
    if not _PINNED_IMAGE.match(ref) or ("@" not in ref and ":" not in name):
        r.fail("imageRef", ref, "expected registry/repository@sha256:<64 hex digits> (or, "
                                "outside prod, registry/repository:tag)")
    elif prod and not _DIGEST.search(ref):
        r.fail("imageRef", ref, "prod deploys an immutable image: pin it by digest, "
                                "registry/repository@sha256:<64 hex digits>")
    elif name.endswith(":latest"):
        r.fail("imageRef", ref, "latest is refused: pin a version tag or, better, a digest")
    return ref


def read_image(r: ConfigReader, prod: bool) -> ImageSettings:
    image = ImageSettings(
        platform=r.choice("imagePlatform", ("linux/amd64", "linux/arm64")),
        retain_count=r.integer("imageRetainCount", 1, 1000),
        local_registry=r.optional_string("localRegistry"),
        ref=_read_image_ref(r, prod),
    )
    if image.local_registry and not _REGISTRY.match(image.local_registry):
        r.fail("localRegistry", image.local_registry, "expected host[:port], e.g. localhost:5001")
    return image


def check_node_architecture(r: ConfigReader, instance_types: tuple[str, ...],
                            platform: str) -> None:
    # Graviton families carry a `g` after the generation digit (m7g, c7gn, t4g, r8g).
    arm64 = platform == "linux/arm64"
    for instance_type in instance_types:
        if bool(_GRAVITON.match(instance_type)) != arm64:
            r.fail("nodeInstanceTypes", instance_type,
                   f"imagePlatform is {platform}, so use "
                   + ("Graviton types such as m7g.large" if arm64 else
                      "x86_64 types such as m7i.large (or set imagePlatform to linux/arm64)"))


def read_network(r: ConfigReader, prod: bool) -> NetworkSettings:
    vpc_cidr = r.string("vpcCidr")
    try:
        network = ipaddress.IPv4Network(vpc_cidr, strict=True)
        if network.prefixlen > 20:
            r.fail("vpcCidr", vpc_cidr, "the VPC needs a /20 or larger block for 6 subnets")
    except ValueError:
        r.fail("vpcCidr", vpc_cidr, "expected an IPv4 network such as 10.40.0.0/16")
    az_count = r.integer("availabilityZoneCount", 2, 4)
    if prod and az_count < 3:
        r.fail("availabilityZoneCount", az_count, "prod spans at least 3 availability zones")
    nat = r.choice("natGateways", cast(tuple[NatMode, ...], ("per-az", "single")))
    if prod and nat != "per-az":
        r.fail("natGateways", nat, "prod requires per-az so one zone's outage keeps egress")
    return NetworkSettings(vpc_cidr, az_count, nat)


def read_cluster(r: ConfigReader, prod: bool) -> ClusterSettings:
    version = r.choice("kubernetesVersion", KUBERNETES_VERSIONS)
    public = r.boolean("endpointPublicAccess")
    cidrs = r.strings("publicAccessCidrs")
    for bad in _bad_cidrs(cidrs):
        r.fail("publicAccessCidrs", bad, "expected CIDRs such as 203.0.113.0/24")
    if prod and public and (not cidrs or "0.0.0.0/0" in cidrs):
        r.fail("publicAccessCidrs", list(cidrs),
               "a public EKS endpoint in prod needs an allow-list without 0.0.0.0/0 "
               "(or set endpointPublicAccess to false)")
    admins = r.strings("adminPrincipalArns")
    for arn in admins:
        if not _IAM_PRINCIPAL.match(arn):
            r.fail("adminPrincipalArns", arn, "expected arn:aws:iam::<account>:role/<name> "
                                              "or :user/<name>")
    role = r.optional_string("kubeconfigRoleArn")
    if role and not IAM_ROLE.match(role):
        r.fail("kubeconfigRoleArn", role, "expected arn:aws:iam::<account>:role/<name>")
    log_types = r.strings("clusterLogTypes")
    for log_type in log_types:
        if log_type not in LOG_TYPES:
            r.fail("clusterLogTypes", log_type, "allowed values are " + ", ".join(LOG_TYPES))
    missing = [t for t in PROD_LOG_TYPES if t not in log_types]
    if prod and missing:
        r.fail("clusterLogTypes", list(log_types),
               "prod must log " + ", ".join(PROD_LOG_TYPES) + f" (missing {', '.join(missing)})")
    instance_types = r.strings("nodeInstanceTypes")
    if not instance_types:
        r.fail("nodeInstanceTypes", [], "at least one EC2 instance type such as m7i.large")
    for instance_type in instance_types:
        if not _INSTANCE_TYPE.match(instance_type):
            r.fail("nodeInstanceTypes", instance_type, "expected an EC2 type such as m7i.large")
    capacity = r.choice("nodeCapacityType", cast(tuple[CapacityType, ...], ("ON_DEMAND", "SPOT")))
    min_size = r.integer("nodeMinSize", 1, 1000)
    desired = r.integer("nodeDesiredSize", 1, 1000)
    max_size = r.integer("nodeMaxSize", 1, 1000)
    if min_size > max_size:
        r.fail("nodeMinSize", min_size, f"must not exceed nodeMaxSize ({max_size})")
    if not min_size <= desired <= max_size:
        r.fail("nodeDesiredSize", desired, f"must be between nodeMinSize ({min_size}) "
                                           f"and nodeMaxSize ({max_size})")
    if prod and min_size < 3:
        r.fail("nodeMinSize", min_size, "prod keeps at least 3 nodes, one per zone")
    disk = r.integer("nodeDiskSizeGb", 20, 16384)
    return ClusterSettings(version, public, cidrs, admins, role, log_types, instance_types,
                           capacity, min_size, desired, max_size, disk)


def read_database(r: ConfigReader, prod: bool) -> DatabaseSettings:
    instance_class = r.matching("dbInstanceClass", _DB_CLASS, "an RDS class such as db.t4g.micro")
    version = r.matching("dbEngineVersion", _MAJOR_OR_MINOR, "a version such as 17 or 17.6")
    storage = r.integer("dbAllocatedStorageGb", 20, 65536)
    max_storage = r.integer("dbMaxAllocatedStorageGb", 20, 65536)
    if max_storage < storage:
        r.fail("dbMaxAllocatedStorageGb", max_storage,
               f"must be at least dbAllocatedStorageGb ({storage})")
    multi_az = r.boolean("dbMultiAz")
    deletion_protection = r.boolean("dbDeletionProtection")
    final_snapshot = r.boolean("dbFinalSnapshot")
    retention = r.integer("dbBackupRetentionDays", 1, 35)
    if prod:
        for key, value in (("dbMultiAz", multi_az), ("dbDeletionProtection", deletion_protection),
                           ("dbFinalSnapshot", final_snapshot)):
            if not value:
                r.fail(key, value, "prod requires true")
        if retention < 14:
            r.fail("dbBackupRetentionDays", retention, "prod keeps at least 14 days of backups")
    insights = r.boolean("dbPerformanceInsights")
    name = r.matching("dbName", _SQL_NAME, "lower-case letters, digits and _ (max 63)")
    username = r.matching("dbUsername", _SQL_NAME, "lower-case letters, digits and _ (max 63)")
    if username in RESERVED_DB_USERS:
        r.fail("dbUsername", username, "reserved by Postgres/RDS; pick another name")
    restored = r.optional_matching("dbRestoredInstance", _RDS_ID, "an RDS instance identifier: "
                                   "a letter, then lower-case letters, digits and - (max 63)")
    snapshot = r.optional_matching("dbRestoreSnapshot", _SNAPSHOT, "a snapshot identifier or an "
                                   "ARN such as arn:aws:rds:<region>:<account>:snapshot:<name>")
    return DatabaseSettings(instance_class, version, storage, max_storage, multi_az,
                            deletion_protection, final_snapshot, retention, insights, name,
                            username, restored, snapshot)


def read_cache(r: ConfigReader, prod: bool) -> CacheSettings:
    node_type = r.matching("cacheNodeType", _CACHE_TYPE, "a node type such as cache.t4g.micro")
    version = r.matching("cacheEngineVersion", _MAJOR_MINOR, "a Valkey version such as 8.0")
    nodes = r.integer("cacheNodes", 1, 6)
    if prod and nodes < 2:
        r.fail("cacheNodes", nodes, "prod needs a replica (2+) for automatic failover")
    snapshots = r.integer("cacheSnapshotRetentionDays", 0, 35)
    if prod and snapshots < 1:
        r.fail("cacheSnapshotRetentionDays", snapshots, "prod keeps at least 1 daily snapshot")
    return CacheSettings(node_type, version, nodes, snapshots)


def read_local(r: ConfigReader) -> LocalSettings:
    size = r.matching("localVolumeSize", QUANTITY, "a size such as 5Gi")
    images = []
    for key in ("localPostgresImage", "localRedisImage"):
        image = r.matching(key, _PINNED_IMAGE, "an image reference such as postgres:17.6-alpine")
        if image and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")):
            r.fail(key, image, "pin a version tag or digest; latest and untagged are refused")
        images.append(image)
    schedule = r.matching("localBackupSchedule", _CRON, "a cron schedule such as 0 * * * *")
    return LocalSettings(r.optional_string("kubeContext"), r.optional_string("localStorageClass"),
                         size, images[0], images[1], schedule,
                         r.integer("localBackupKeep", 0, 1000),
                         r.matching("localBackupVolumeSize", QUANTITY, "a size such as 10Gi"))


