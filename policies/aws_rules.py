"""AWS rules: data stores private and encrypted, EKS locked down, images scanned, tags present."""

from __future__ import annotations

from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from common import resource_policy

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
ECR_REPOSITORY = "aws:ecr/repository:Repository"
KMS_KEY = "aws:kms/key:Key"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
REQUIRED_LOG_TYPES = ("api", "audit", "authenticator")
WORLD = ("0.0.0.0/0", "::/0")
WEB_PORTS = (80, 443)

# AWS types that take no `tags` argument; everything else under `aws:` must carry the tags.
UNTAGGABLE = frozenset({
    "aws:ec2/routeTableAssociation:RouteTableAssociation",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:iam/rolePolicy:RolePolicy",
    "aws:kms/alias:Alias", "aws:ecr/lifecyclePolicy:LifecyclePolicy",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
    "aws:ec2/securityGroupRule:SecurityGroupRule", "aws:ec2/route:Route",
    "aws:route53/record:Record", "aws:acm/certificateValidation:CertificateValidation",
    "aws:backup/vaultLockConfiguration:VaultLockConfiguration",
    "aws:backup/selection:Selection", "aws:cloudwatch/eventTarget:EventTarget",
    "aws:sns/topicPolicy:TopicPolicy", "aws:sns/topicSubscription:TopicSubscription",
    "aws:sqs/queuePolicy:QueuePolicy",
})
DEFAULT_REQUIRED_TAGS = ["Project", "Stack", "Environment", "Owner", "CostCenter", "ManagedBy"]


def rds_storage_encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == RDS_INSTANCE and args.props.get("storageEncrypted") is not True:
        report("RDS storage is not encrypted: set storage_encrypted=True (it can only be set "
               "when the instance is created; restore an encrypted snapshot to fix an existing "
               "one).", None)


def rds_not_public(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == RDS_INSTANCE and args.props.get("publiclyAccessible") is True:
        report("The RDS instance is publicly accessible: set publicly_accessible=False and reach "
               "it from the cluster through its security group.", None)


def rds_backup_retention(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != RDS_INSTANCE:
        return
    minimum = int(args.get_config().get("minimumDays", 14))
    days = args.props.get("backupRetentionPeriod") or 0
    if days < minimum:
        report(f"Backups are kept {days} days; this stack requires at least {minimum}: raise "
               "dbBackupRetentionDays.", None)


def rds_multi_az(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if (args.resource_type == RDS_INSTANCE and args.get_config().get("required", True)
            and args.props.get("multiAz") is not True):
        report("The database has no standby in a second zone: set dbMultiAz to true.", None)


def rds_deletion_protection(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != RDS_INSTANCE or not args.get_config().get("required", True):
        return
    if args.props.get("deletionProtection") is not True:
        report("Deletion protection is off: set dbDeletionProtection to true.", None)
    if args.props.get("skipFinalSnapshot") is True:
        report("No final snapshot would be taken on deletion: set dbFinalSnapshot to true.", None)


def rds_force_ssl(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != RDS_PARAMETER_GROUP:
        return
    if not str(args.props.get("family", "")).startswith("postgres"):
        return
    values = {p.get("name"): str(p.get("value")) for p in args.props.get("parameters") or []}
    if values.get("rds.force_ssl") != "1":
        report("The parameter group lets clients connect without TLS: set rds.force_ssl=1.", None)


def elasticache_encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != REPLICATION_GROUP:
        return
    missing = [field for field in ("transitEncryptionEnabled", "atRestEncryptionEnabled")
               if args.props.get(field) is not True]
    if missing:
        report(f"ElastiCache lacks {', '.join(missing)}: enable TLS in transit and encryption "
               "at rest (both require replacing the replication group).", None)
    if not args.props.get("authToken"):
        report("ElastiCache has no AUTH token: set auth_token (from pulumi_random).", None)


def eks_endpoint_restricted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != EKS_CLUSTER:
        return
    vpc = args.props.get("vpcConfig") or {}
    if vpc.get("endpointPublicAccess") is False:
        return
    cidrs = vpc.get("publicAccessCidrs") or ["0.0.0.0/0"]
    if any(cidr in WORLD for cidr in cidrs):
        report("The EKS API endpoint is public to the whole internet: set endpointPublicAccess "
               "to false, or publicAccessCidrs to your office and CI egress ranges.", None)


def eks_secrets_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != EKS_CLUSTER:
        return
    config = args.props.get("encryptionConfig") or {}
    if "secrets" not in (config.get("resources") or []) or not (
            config.get("provider") or {}).get("keyArn"):
        report("Kubernetes Secrets are not envelope-encrypted: give the cluster an "
               "encryption_config with a KMS key for the `secrets` resource.", None)


def eks_control_plane_logging(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != EKS_CLUSTER:
        return
    enabled = args.props.get("enabledClusterLogTypes") or []
    missing = [t for t in REQUIRED_LOG_TYPES if t not in enabled]
    if missing:
        report(f"Control-plane logs {', '.join(missing)} are off: add them to clusterLogTypes.",
               None)


def ecr_scan_on_push(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != ECR_REPOSITORY:
        return
    if (args.props.get("imageScanningConfiguration") or {}).get("scanOnPush") is not True:
        report("Images are not scanned on push: set image_scanning_configuration "
               "scan_on_push=True.", None)


def ecr_immutable_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == ECR_REPOSITORY and args.props.get("imageTagMutability") != \
            "IMMUTABLE":
        report("Image tags can be overwritten: set image_tag_mutability=\"IMMUTABLE\" so a tag "
               "always means the same image.", None)


def _world_open_ports(rule: dict[str, Any]) -> tuple[int, int] | None:
    cidrs = list(rule.get("cidrBlocks") or []) + list(rule.get("ipv6CidrBlocks") or [])
    for key in ("cidrIpv4", "cidrIpv6"):
        if rule.get(key):
            cidrs.append(rule[key])
    if not any(cidr in WORLD for cidr in cidrs):
        return None
    return int(rule.get("fromPort", 0) or 0), int(rule.get("toPort", 65535) or 0)


def security_group_open_ingress(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == SECURITY_GROUP:
        rules = list(args.props.get("ingress") or [])
    elif args.resource_type == SECURITY_GROUP_RULE and args.props.get("type") == "ingress":
        rules = [dict(args.props)]
    elif args.resource_type == INGRESS_RULE:
        rules = [dict(args.props)]
    else:
        return
    for rule in rules:
        ports = _world_open_ports(rule)
        if ports is not None and not (ports[0] == ports[1] and ports[0] in WEB_PORTS):
            report(f"Ports {ports[0]}-{ports[1]} are open to the internet: only 80 and 443 of "
                   "the load balancer may be; admit other traffic by security group instead.",
                   None)


def kms_key_rotation(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == KMS_KEY and args.props.get("enableKeyRotation") is not True:
        report("The KMS key is not rotated: set enable_key_rotation=True.", None)


def required_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not args.resource_type.startswith("aws:") or args.resource_type in UNTAGGABLE:
        return
    required = list(args.get_config().get("tags") or DEFAULT_REQUIRED_TAGS)
    tags = args.props.get("tags") or {}
    missing = [tag for tag in required if not tags.get(tag)]
    if missing:
        report(f"Missing tags {', '.join(missing)}: pass settings.tags to this resource.", None)


HIGH, CRITICAL, MEDIUM = Severity.HIGH, Severity.CRITICAL, Severity.MEDIUM

AWS_POLICIES = [
    resource_policy("rds-storage-encrypted", "RDS storage is encrypted at rest.",
                    rds_storage_encrypted, severity=CRITICAL,
                    remediation="Set storage_encrypted=True on the instance."),
    resource_policy("rds-not-publicly-accessible", "RDS instances are never publicly accessible.",
                    rds_not_public, severity=CRITICAL,
                    remediation="Set publicly_accessible=False."),
    resource_policy("rds-backup-retention",
                    "RDS keeps automated backups for the stack's minimum number of days.",
                    rds_backup_retention, severity=HIGH,
                    remediation="Raise dbBackupRetentionDays.",
                    config={"minimumDays": {"type": "integer", "default": 14, "minimum": 1}}),
    resource_policy("rds-multi-az", "RDS has a synchronous standby where the stack requires it.",
                    rds_multi_az, severity=HIGH, remediation="Set dbMultiAz to true.",
                    config={"required": {"type": "boolean", "default": True}}),
    resource_policy("rds-deletion-protection",
                    "RDS refuses deletion and takes a final snapshot where the stack requires it.",
                    rds_deletion_protection, severity=HIGH,
                    remediation="Set dbDeletionProtection and dbFinalSnapshot to true.",
                    config={"required": {"type": "boolean", "default": True}}),
    resource_policy("rds-force-ssl", "Postgres parameter groups force TLS (rds.force_ssl=1).",
                    rds_force_ssl, severity=HIGH,
                    remediation="Add the parameter rds.force_ssl=1."),
    resource_policy("elasticache-encrypted-and-authenticated",
                    "ElastiCache uses TLS in transit, encryption at rest and an AUTH token.",
                    elasticache_encrypted, severity=CRITICAL,
                    remediation="Enable transit and at-rest encryption and set auth_token."),
    resource_policy("eks-endpoint-restricted",
                    "The EKS API endpoint is private or limited to an allow-list.",
                    eks_endpoint_restricted, severity=HIGH,
                    remediation="Set endpointPublicAccess=false or narrow publicAccessCidrs."),
    resource_policy("eks-secrets-encryption",
                    "EKS envelope-encrypts Kubernetes Secrets with a KMS key.",
                    eks_secrets_encryption, severity=HIGH,
                    remediation="Add an encryption_config for `secrets` with a KMS key."),
    resource_policy("eks-control-plane-logging",
                    "EKS ships api, audit and authenticator logs to CloudWatch.",
                    eks_control_plane_logging, severity=MEDIUM,
                    remediation="Add api, audit and authenticator to clusterLogTypes."),
    resource_policy("ecr-scan-on-push", "ECR scans every pushed image.", ecr_scan_on_push,
                    severity=MEDIUM, remediation="Set scan_on_push=True."),
    resource_policy("ecr-immutable-tags", "ECR tags are immutable.", ecr_immutable_tags,
                    severity=MEDIUM, remediation="Set image_tag_mutability=IMMUTABLE."),
    resource_policy("security-group-open-ingress",
                    "Only ports 80 and 443 may be open to 0.0.0.0/0 or ::/0.",
                    security_group_open_ingress, severity=CRITICAL,
                    remediation="Admit traffic from a security group or a narrow CIDR."),
    resource_policy("kms-key-rotation", "Customer-managed KMS keys rotate yearly.",
                    kms_key_rotation, severity=MEDIUM,
                    remediation="Set enable_key_rotation=True."),
    resource_policy("required-tags", "Every taggable AWS resource carries the required tags.",
                    required_tags, severity=MEDIUM,
                    remediation="Pass settings.tags to the resource.",
                    config={"tags": {"type": "array", "items": {"type": "string"},
                                     "default": DEFAULT_REQUIRED_TAGS}}),
]
