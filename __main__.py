"""agent-platform: the LLM agent service from source to production.

This file only wires the components (components/, one package per layer). Every stack builds the
service image from `app/` (delivery/image.py) or deploys the prebuilt `imageRef`. On AWS (`dev`,
`prod`) it deploys, from components/aws/:
  1. a VPC over 3 zones with private subnets and NAT egress (network.py);
  2. an EKS cluster with a managed node group, add-ons, the AWS Load Balancer Controller,
     metrics-server and cluster-autoscaler or Karpenter with node pools for the service, each
     controller with its role through EKS Pod Identity (cluster.py, cluster_addons.py,
     karpenter.py);
  3. RDS Postgres and ElastiCache Valkey, reachable only from the cluster (database.py, cache.py),
     the database backed up hourly by AWS Backup into a locked vault (backup.py);
  4. an ECR repository the image is pushed to (registry.py);
  5. with `domainName`, the API's ACM certificate and its Route 53 alias record (edge.py).
The `local` stack uses the current kubeconfig context instead, with Postgres and Valkey running
in the cluster (kubernetes/in_cluster_data.py) and the image built by the local Docker engine.
On every stack the agent service itself runs from that image (kubernetes/service/), watched by
the monitoring stack and, where enabled, tracing (observability/).
"""

from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws.backup import DatabaseBackup, DatabaseBackupArgs
from components.aws.cache import Cache, CacheArgs
from components.aws.cluster import Cluster, ClusterArgs
from components.aws.cluster_addons import ClusterAddons, ClusterAddonsArgs
from components.aws.database import Database, DatabaseArgs
from components.aws.edge import (
    ApiCertificate,
    ApiCertificateArgs,
    ApiDnsRecord,
    ApiDnsRecordArgs,
    gateway_load_balancer_hostname,
)
from components.aws.karpenter import Karpenter, KarpenterArgs
from components.aws.kubeconfig import eks_kubeconfig_output
from components.aws.network import Network, NetworkArgs, available_zones
from components.aws.registry import Registry, RegistryArgs
from components.config.monitoring import RECEIVER_SECRETS
from components.config.settings import Settings, load_settings, secret_config
from components.delivery.image import AppImage, AppImageArgs
from components.endpoints import CacheEndpoint, DatabaseEndpoint
from components.kubernetes.in_cluster_data import InClusterData, InClusterDataArgs
from components.kubernetes.peers import namespace_peer
from components.kubernetes.rollouts_controller import (
    ROLLOUTS_NAMESPACE,
    ROLLOUTS_SERVICE_ACCOUNT,
    RolloutsController,
    RolloutsControllerArgs,
)
from components.kubernetes.service import (
    API_PORT,
    SERVICE_ACCOUNT,
    AgentService,
    AgentServiceArgs,
)
from components.observability.monitoring import Monitoring, MonitoringArgs
from components.observability.tracing import Tracing, TracingArgs, collector_endpoint, jaeger_url

APP_DIR = Path(__file__).parent / "app"
MONITORING_NAMESPACE = "monitoring"
DATA_NAMESPACE = "agent-data"


class Platform(NamedTuple):
    """What the agent service runs on, whichever stack built it."""

    kubernetes: k8s.Provider
    database: DatabaseEndpoint
    cache: CacheEndpoint
    image_ref: pulumi.Input[str]
    """The built image, digest-pinned when pushed, or the configured `imageRef`."""
    ingress_peers: list[k8s.networking.v1.NetworkPolicyPeerArgs]
    data_peers: list[k8s.networking.v1.NetworkPolicyPeerArgs]
    ready: list[pulumi.Resource]
    certificate_arn: pulumi.Output[str] | None = None
    """The API's certificate, when the program made it for `domainName`."""
    grafana_certificate_arn: pulumi.Output[str] | None = None
    """Grafana's, for `grafanaDomainName`."""
    aws_region: pulumi.Output[str] | None = None
    """The AWS region: Argo Rollouts verifies each traffic shift on the ALB there."""


def deploy_aws(s: Settings) -> Platform:
    name = s.resource_prefix
    zones = available_zones(s.network.az_count)
    network = Network("network", NetworkArgs(
        cidr=s.network.vpc_cidr, availability_zones=zones, nat_gateways=s.network.nat_gateways,
        cluster_name=name, tags=s.tags))
    cluster = Cluster("cluster", ClusterArgs(
        cluster_name=name, settings=s.cluster, private_subnet_ids=network.private_subnet_ids,
        node_arm64=s.image.platform == "linux/arm64", tags=s.tags, protect=s.protect_state))
    region = aws.get_region_output().region
    kubeconfig = eks_kubeconfig_output(cluster.cluster_name, cluster.endpoint,
                                       cluster.certificate_authority, region,
                                       s.cluster.kubeconfig_role_arn)
    kubernetes = k8s.Provider("eks", kubeconfig=kubeconfig)
    # Adopts what already exists: the CRDs an earlier load balancer controller chart installed.
    crds = k8s.Provider("eks-crds", kubeconfig=kubeconfig, upsert_existing_objects=True,
                        enable_patch_force=True)
    ingress = s.service.ingress
    addons = ClusterAddons("addons", ClusterAddonsArgs(
        cluster_name=name, cluster=cluster.cluster_name, region=region, vpc_id=network.vpc_id,
        tags=s.tags, kubernetes_version=s.cluster.kubernetes_version,
        keda=s.service.keda_enabled, service_role_arn=s.service.service_account_role_arn,
        service_namespace=s.service.namespace, service_account=SERVICE_ACCOUNT,
        cluster_autoscaler=not s.nodes.karpenter,
        rollouts_namespace=ROLLOUTS_NAMESPACE if s.delivery.progressive else None,
        rollouts_service_account=ROLLOUTS_SERVICE_ACCOUNT, crd_provider=crds,
        gateway_class=ingress.gateway_class if ingress.enabled and ingress.alb_gateway else None),
        opts=pulumi.ResourceOptions(providers=[kubernetes], depends_on=[cluster]))
    ready: list[pulumi.Resource] = [addons]
    if s.nodes.karpenter:
        ready.append(Karpenter("karpenter", KarpenterArgs(
            cluster_name=name, cluster=cluster.cluster_name, region=region,
            subnet_ids=network.private_subnet_ids,
            security_group_id=cluster.cluster_security_group_id, settings=s.nodes,
            arm64=s.image.platform == "linux/arm64",
            disk_size_gb=s.cluster.node_disk_size_gb, tags=s.tags),
            opts=pulumi.ResourceOptions(providers=[kubernetes], depends_on=[cluster])))

    database = Database("database", DatabaseArgs(
        identifier=f"{name}-postgres", settings=s.database, vpc_id=network.vpc_id,
        subnet_ids=network.private_subnet_ids,
        client_security_group_id=cluster.cluster_security_group_id, tags=s.tags,
        protect=s.protect_state))
    if s.backup.enabled:
        backup = DatabaseBackup("backup", DatabaseBackupArgs(
            database_arns=database.served_arns, retention_days=s.backup.retention_days,
            copy_region=s.backup.copy_region, vault_lock=s.backup.vault_lock,
            alert_email=s.backup.alert_email, tags=s.tags, protect=s.protect_state))
        pulumi.export("backup_vault_arn", backup.vault_arn)
        pulumi.export("backup_alert_topic_arn", backup.alert_topic_arn)
    cache = Cache("cache", CacheArgs(
        replication_group_id=f"{name}-valkey", settings=s.cache, vpc_id=network.vpc_id,
        subnet_ids=network.private_subnet_ids,
        client_security_group_id=cluster.cluster_security_group_id, tags=s.tags,
        protect=s.protect_state))
    registry = Registry("registry", RegistryArgs(
        repository_name=f"{name}/agent-service", retain_count=s.image.retain_count, tags=s.tags,
        protect=s.protect_state))
    image_ref = s.image.ref or AppImage("app-image", AppImageArgs(
        context=APP_DIR, repository=registry.repository_url, platform=s.image.platform,
        push=True, registry_server=registry.server, registry_username=registry.username,
        registry_password=registry.password)).image_ref

    zone = ingress.hosted_zone_id
    grafana_domain = s.monitoring.grafana_domain if s.monitoring.enabled else None

    pulumi.export("vpc_id", network.vpc_id)
    pulumi.export("cluster_name", cluster.cluster_name)
    pulumi.export("kubeconfig", kubeconfig)
    # ALB targets are pod IPs, and Postgres/Valkey sit in private subnets: both are in the VPC.
    vpc = [k8s.networking.v1.NetworkPolicyPeerArgs(
        ip_block=k8s.networking.v1.IPBlockArgs(cidr=s.network.vpc_cidr))]
    return Platform(kubernetes, database.endpoint, cache.endpoint, image_ref, ingress_peers=vpc,
                    data_peers=vpc, ready=ready,
                    certificate_arn=certificate("api", ingress.domain, zone, s.tags),
                    grafana_certificate_arn=certificate("grafana", grafana_domain, zone, s.tags),
                    aws_region=region)


def certificate(name: str, domain: str | None, zone: str | None,
                tags: Mapping[str, str]) -> pulumi.Output[str] | None:
    """A validated certificate for a name the program serves in the hosted zone, if both set."""
    if not (domain and zone):
        return None
    return ApiCertificate(f"{name}-certificate", ApiCertificateArgs(
        domain_name=domain, hosted_zone_id=zone, tags=tags)).certificate_arn


def deploy_local(s: Settings) -> Platform:
    kubernetes = k8s.Provider("local", context=s.local.kube_context)
    data = InClusterData("data", InClusterDataArgs(
        namespace=DATA_NAMESPACE, settings=s.local, database=s.database.name,
        username=s.database.username, protect=s.protect_state),
        opts=pulumi.ResourceOptions(providers=[kubernetes]))
    registry = s.image.local_registry
    image_ref = s.image.ref or AppImage("app-image", AppImageArgs(
        context=APP_DIR, repository=f"{registry}/agent-service" if registry else "agent-service",
        platform=s.image.platform, push=registry is not None)).image_ref
    return Platform(kubernetes, data.database, data.cache, image_ref,
                    ingress_peers=[namespace_peer(s.service.ingress.controller_namespace)],
                    data_peers=[namespace_peer(DATA_NAMESPACE)], ready=[data])


def deploy_service(s: Settings, platform: Platform) -> AgentService:
    keys = {env: value for env, key in (("OPENAI_API_KEY", "openaiApiKey"),
                                        ("ANTHROPIC_API_KEY", "anthropicApiKey"))
            if (value := secret_config(key)) is not None}
    rollouts: list[pulumi.Resource] = []
    if s.delivery.progressive:
        # What the service's Rollouts need first are the CRDs; the controller catches up.
        rollouts.append(RolloutsController("rollouts", RolloutsControllerArgs(
            monitoring_namespace=MONITORING_NAMESPACE, replicas=2 if s.on_aws else 1,
            probes=[(s.service.namespace, API_PORT)] if s.delivery.strategy == "bluegreen"
            else [], aws_region=platform.aws_region, start_after=platform.ready),
            opts=pulumi.ResourceOptions(providers=[platform.kubernetes],
                                        depends_on=platform.ready)).crds)
    return AgentService("agent", AgentServiceArgs(
        settings=s.service, image=platform.image_ref, database=platform.database,
        cache=platform.cache,
        ingress_peers=platform.ingress_peers, data_peers=platform.data_peers,
        monitoring_namespace=MONITORING_NAMESPACE, instance=s.stack, llm_api_keys=keys,
        aws_tags=s.tags if s.on_aws else {},
        tracing_endpoint=collector_endpoint(MONITORING_NAMESPACE) if s.tracing.enabled else None,
        trace_sample_ratio=s.tracing.sample_ratio, certificate_arn=platform.certificate_arn,
        node_pools=s.on_aws and s.nodes.karpenter, delivery=s.delivery,
        rollouts_controller=rollouts, protect=s.protect_state,
        rollouts_namespace=ROLLOUTS_NAMESPACE),
        opts=pulumi.ResourceOptions(providers=[platform.kubernetes], depends_on=platform.ready))


def deploy_monitoring(s: Settings, platform: Platform, service: AgentService) -> Monitoring:
    secrets = {key: value for key in RECEIVER_SECRETS
               if (value := secret_config(key)) is not None}
    return Monitoring("monitoring", MonitoringArgs(
        settings=s.monitoring, namespace=MONITORING_NAMESPACE,
        service_namespace=service.namespace, service_namespace_name=s.service.namespace,
        api_selector=service.selector("api"), worker_selector=service.selector("worker"),
        managed_control_plane=s.on_aws,
        ingress=s.service.ingress, receiver_secrets=secrets,
        aws_tags=s.tags if s.on_aws else {},
        jaeger_url=jaeger_url()
        if s.tracing.enabled and s.tracing.backend == "jaeger" else None,
        grafana_certificate_arn=platform.grafana_certificate_arn,
        rollouts_namespace=ROLLOUTS_NAMESPACE if s.delivery.progressive else None),
        opts=pulumi.ResourceOptions(providers=[platform.kubernetes], depends_on=platform.ready))


def deploy_tracing(s: Settings, platform: Platform, monitoring: Monitoring) -> Tracing:
    return Tracing("tracing", TracingArgs(
        settings=s.tracing, namespace=monitoring.namespace, namespace_name=MONITORING_NAMESPACE,
        auth_token=secret_config("tracingOtlpAuthToken"), protect=s.protect_state),
        opts=pulumi.ResourceOptions(providers=[platform.kubernetes], depends_on=platform.ready))


def dns_record(name: str, domain: str | None, zone: str | None,
               load_balancer_hostname: pulumi.Output[str] | None) -> None:
    """The name's alias record to the ALB its Ingress got, when the program serves that name."""
    if domain and zone and load_balancer_hostname:
        ApiDnsRecord(f"{name}-dns", ApiDnsRecordArgs(
            domain_name=domain, hosted_zone_id=zone,
            load_balancer_hostname=load_balancer_hostname))


settings = load_settings()
platform = deploy_aws(settings) if settings.on_aws else deploy_local(settings)
service = deploy_service(settings, platform)
api_hostname = service.api_load_balancer_hostname
if service.api_gateway and settings.service.ingress.alb_gateway and settings.service.ingress.domain:
    api_hostname = gateway_load_balancer_hostname(settings.resource_prefix, *service.api_gateway)
dns_record("api", settings.service.ingress.domain, settings.service.ingress.hosted_zone_id,
           api_hostname)
if settings.monitoring.enabled:
    monitoring = deploy_monitoring(settings, platform, service)
    pulumi.export("grafana_admin_password", monitoring.grafana_admin_password)
    grafana_domain = settings.monitoring.grafana_domain
    dns_record("grafana", grafana_domain, settings.service.ingress.hosted_zone_id,
               monitoring.grafana_load_balancer_hostname)
    if grafana_domain and monitoring.grafana_load_balancer_hostname:
        pulumi.export("grafana_url", f"https://{grafana_domain}")
    if settings.tracing.enabled:
        deploy_tracing(settings, platform, monitoring)

pulumi.export("environment", settings.environment)
pulumi.export("image_ref", platform.image_ref)
pulumi.export("database_host", platform.database.host)
pulumi.export("database_url", platform.database.url())
pulumi.export("redis_host", platform.cache.host)
pulumi.export("redis_url", platform.cache.url())
pulumi.export("service_namespace", service.namespace)
pulumi.export("api_service", service.api_service_name)
pulumi.export("api_port_forward", service.port_forward)
if service.api_url:
    pulumi.export("api_url", service.api_url)
