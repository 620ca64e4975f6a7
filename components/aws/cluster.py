"""EKS built from pulumi-aws resources: control plane, managed nodes, add-ons (the Pod Identity
agent among them), and the OIDC provider the VPC CNI's IRSA role still needs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.service_account_roles import irsa_role, service_trust_policy
from components.config.platform import ClusterSettings
from components.labels import NODE_POOL_LABEL

AWS_MANAGED = "arn:aws:iam::aws:policy"
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
CONTROL_PLANE_LOG_RETENTION_DAYS = 90


@dataclass(frozen=True, kw_only=True)
class ClusterArgs:
    cluster_name: str
    """EKS cluster name; also names its log group, so it is fixed rather than auto-named."""
    settings: ClusterSettings
    """Version, endpoint access, admins, logs and node group sizes from the stack config."""
    private_subnet_ids: pulumi.Input[Sequence[str]]
    """Subnets for the control-plane ENIs and the nodes."""
    node_arm64: bool
    """Run Graviton (arm64) nodes instead of x86_64."""
    tags: Mapping[str, str]
    """Tags for every AWS resource."""
    protect: bool
    """Protect the cluster, its secrets key and its audit logs from deletion."""


def principal_key(arn: str) -> str:
    """A logical-name fragment for an IAM principal: its account and name, which stay the same
    for the same principal (`arn:aws:iam::123456789012:role/Admin` -> `123456789012-role-Admin`).
    URNs cannot hold the ARN itself (it contains `::`)."""
    account, resource = arn.split(":")[4], arn.split(":", 5)[5]
    return f"{account}-{resource.replace('/', '-')}"


NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly",
                 # SSM replaces SSH for node access: no key pair, no port 22.
                 "AmazonSSMManagedInstanceCore")


def node_role(name: str, tags: Mapping[str, str], opts: pulumi.ResourceOptions
              ) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """The role EC2 nodes join the cluster with (the node group's, and Karpenter's), and its
    managed policies. No CNI policy: the VPC CNI has its own role (IRSA)."""
    role = aws.iam.Role(f"{name}-node-role",
                        assume_role_policy=service_trust_policy("ec2.amazonaws.com"),
                        tags=dict(tags), opts=opts)
    return role, [aws.iam.RolePolicyAttachment(f"{name}-node-{policy}", role=role.name,
                                               policy_arn=f"{AWS_MANAGED}/{policy}", opts=opts)
                  for policy in NODE_POLICIES]


class Cluster(pulumi.ComponentResource):
    """An EKS cluster whose every part is a pulumi-aws resource visible to tests and policies."""

    cluster_name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    certificate_authority: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer_url: pulumi.Output[str]
    cluster_security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:cluster:Cluster", name, None, opts)
        c = args.settings
        if not 1 <= c.node_min_size <= c.node_desired_size <= c.node_max_size:
            raise ValueError(
                f"node sizes: need 1 <= min ({c.node_min_size}) <= desired "
                f"({c.node_desired_size}) <= max ({c.node_max_size})")
        self._name = name
        self._args = args
        self._tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)
        # State that cannot be rebuilt: the cluster (and every workload on it), the key that
        # decrypts its Secrets, and its audit logs.
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect)

        self.secrets_key = aws.kms.Key(
            f"{name}-secrets-key", description=f"Envelope encryption of {args.cluster_name} "
            "Kubernetes secrets", enable_key_rotation=True, deletion_window_in_days=30,
            tags=self._tags, opts=kept)
        aws.kms.Alias(f"{name}-secrets-key", name=f"alias/{args.cluster_name}-secrets",
                      target_key_id=self.secrets_key.key_id, opts=child)
        # EKS creates this group itself with no expiry; owning it first sets a retention.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs", name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=CONTROL_PLANE_LOG_RETENTION_DAYS, tags=self._tags, opts=kept)
        role = aws.iam.Role(f"{name}-control-plane-role",
                            assume_role_policy=service_trust_policy("eks.amazonaws.com"),
                            tags=self._tags, opts=child)
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-control-plane-policy", role=role.name,
            policy_arn=f"{AWS_MANAGED}/AmazonEKSClusterPolicy", opts=child)

        self.eks = aws.eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=c.kubernetes_version,
            role_arn=role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=args.private_subnet_ids,
                endpoint_private_access=True,
                endpoint_public_access=c.endpoint_public_access,
                public_access_cidrs=(list(c.public_access_cidrs)
                                     if c.endpoint_public_access and c.public_access_cidrs
                                     else None),
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(
                    key_arn=self.secrets_key.arn),
                resources=["secrets"]),
            enabled_cluster_log_types=list(c.log_types),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                # The identity running `pulumi up` must be able to install the workloads.
                bootstrap_cluster_creator_admin_permissions=True),
            # Extended support costs six times as much; upgrade on the standard calendar.
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type="STANDARD"),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, attachment],
                                        protect=args.protect),
        )
        self.cluster_name = self.eks.name
        self.endpoint = self.eks.endpoint
        self.certificate_authority = self.eks.certificate_authority.apply(
            lambda ca: ca.data or "")
        self.oidc_issuer_url = self.eks.identities.apply(
            lambda ids: (ids[0].oidcs or [])[0].issuer or "")
        self.cluster_security_group_id = self.eks.vpc_config.apply(
            lambda vpc: vpc.cluster_security_group_id or "")

        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc", url=self.oidc_issuer_url, client_id_lists=["sts.amazonaws.com"],
            tags=self._tags, opts=child)
        self.oidc_provider_arn = oidc.arn

        self._create_access_entries()
        # The Pod Identity agent with the network add-ons: before the first node, so no
        # controller pod starts before it can hand out credentials.
        network_addons = self._create_addons(("vpc-cni", "kube-proxy", "eks-pod-identity-agent"))
        self.node_group = self._create_node_group(depends_on=network_addons)
        self._create_addons(("coredns", "aws-ebs-csi-driver"), depends_on=[self.node_group])

        self.register_outputs({
            "cluster_name": self.cluster_name,
            "endpoint": self.endpoint,
            "oidc_provider_arn": self.oidc_provider_arn,
            "cluster_security_group_id": self.cluster_security_group_id,
        })

    def _irsa(self, role: str, namespace: str, service_account: str,
              policies: Sequence[str]) -> aws.iam.Role:
        return irsa_role(
            f"{self._name}-{role}-irsa", oidc_provider_arn=self.oidc_provider_arn,
            issuer_url=self.oidc_issuer_url, namespace=namespace,
            service_account=service_account,
            managed_policy_arns=[f"{AWS_MANAGED}/{p}" for p in policies], tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self))

    def _create_addons(self, names: Sequence[str],
                       depends_on: Sequence[pulumi.Resource] = ()) -> list[aws.eks.Addon]:
        settings: dict[str, tuple[str | None, aws.iam.Role | None]] = {}
        for addon in names:
            if addon == "vpc-cni":
                # The CNI's own role keeps AmazonEKS_CNI_Policy off the node role, and
                # enableNetworkPolicy makes NetworkPolicy objects actually enforced. The CNI and
                # the EBS CSI driver stay on IRSA: EKS runs their pods and does not restart them
                # when the add-on's identity changes, so moving a running cluster to Pod
                # Identity would leave them holding credentials for a deleted role (and the
                # CNI gates every pod IP on a new node, where IRSA needs no other DaemonSet).
                settings[addon] = (json.dumps({"enableNetworkPolicy": "true"}),
                                   self._irsa("vpc-cni", "kube-system", "aws-node",
                                              ["AmazonEKS_CNI_Policy"]))
            elif addon == "aws-ebs-csi-driver":
                settings[addon] = (None, self._irsa(
                    "ebs-csi", "kube-system", "ebs-csi-controller-sa",
                    ["service-role/AmazonEBSCSIDriverPolicy"]))
            else:
                settings[addon] = (None, None)
        addons = []
        for addon, (values, role) in settings.items():
            addons.append(aws.eks.Addon(
                f"{self._name}-{addon}", cluster_name=self.eks.name, addon_name=addon,
                # The build EKS names the default for the cluster's minor: raising
                # kubernetesVersion moves every add-on with it, in the same `pulumi up`.
                addon_version=aws.eks.get_addon_version_output(
                    addon_name=addon, kubernetes_version=self.eks.version).version,
                configuration_values=values,
                service_account_role_arn=role.arn if role else None,
                # EKS installs self-managed copies of some add-ons; the managed one takes over.
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="PRESERVE",
                tags=self._tags,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on))))
        return addons

    def _create_access_entries(self) -> None:
        for index, principal in enumerate(self._args.settings.admin_principal_arns):
            # Named by the principal, never by its position: removing one admin must not
            # rename (replace) the entries of the others.
            name = f"{self._name}-admin-{principal_key(principal)}"
            entry = aws.eks.AccessEntry(
                name, cluster_name=self.eks.name,
                principal_arn=principal, type="STANDARD", tags=self._tags,
                opts=pulumi.ResourceOptions(
                    parent=self, aliases=[pulumi.Alias(name=f"{self._name}-admin-{index}")]))
            aws.eks.AccessPolicyAssociation(
                name, cluster_name=self.eks.name,
                principal_arn=entry.principal_arn, policy_arn=CLUSTER_ADMIN_POLICY,
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=pulumi.ResourceOptions(
                    parent=self, aliases=[pulumi.Alias(name=f"{self._name}-admin-{index}")]))

    def _create_node_group(self, depends_on: Sequence[pulumi.Resource]) -> aws.eks.NodeGroup:
        args = self._args
        c = args.settings
        child = pulumi.ResourceOptions(parent=self)
        role, attachments = node_role(self._name, self._tags, child)
        template = aws.ec2.LaunchTemplate(
            f"{self._name}-nodes",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required",
                # Hop limit 1 keeps pods away from the node role's credentials: every
                # workload that needs AWS gets its own IRSA role instead.
                http_put_response_hop_limit=1),
            block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name="/dev/xvda",
                ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_size=c.node_disk_size_gb, volume_type="gp3", encrypted="true",
                    delete_on_termination="true"))],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=self._tags)
                for kind in ("instance", "volume")],
            tags=self._tags, opts=child)
        return aws.eks.NodeGroup(
            f"{self._name}-nodes",
            cluster_name=self.eks.name,
            node_role_arn=role.arn,
            subnet_ids=args.private_subnet_ids,
            instance_types=list(c.node_instance_types),
            capacity_type=c.node_capacity_type,
            # Follows the control plane: after it upgrades, the nodes roll onto the new minor
            # (33 % at a time) in the same `pulumi up`, not whenever someone remembers.
            version=self.eks.version,
            ami_type="AL2023_ARM_64_STANDARD" if args.node_arm64 else "AL2023_x86_64_STANDARD",
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=c.node_min_size, desired_size=c.node_desired_size,
                max_size=c.node_max_size),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable_percentage=33),
            # EKS replaces nodes that report unhealthy instead of leaving them to page someone.
            node_repair_config=aws.eks.NodeGroupNodeRepairConfigArgs(enabled=True),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)),
            labels={NODE_POOL_LABEL: "general"},
            tags={**self._tags, "k8s.io/cluster-autoscaler/enabled": "true",
                  f"k8s.io/cluster-autoscaler/{args.cluster_name}": "owned"},
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*attachments, *depends_on],
                # The cluster autoscaler owns the node count after creation; without this
                # every `pulumi up` would reset it to the configured desired size.
                ignore_changes=["scalingConfig.desiredSize"]),
        )
