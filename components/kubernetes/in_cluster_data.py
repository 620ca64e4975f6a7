"""Postgres and Valkey inside the cluster, for the `local` stack: same contracts as RDS/ElastiCache.

Both run as single-replica StatefulSets on PersistentVolumeClaims from the official images, with
restricted pod security and passwords from `pulumi_random` kept in Kubernetes Secrets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.config.platform import LocalSettings
from components.endpoints import POSTGRES_PORT, REDIS_PORT, CacheEndpoint, DatabaseEndpoint
from components.kubernetes.hardening import restricted_container, restricted_pod
from components.kubernetes.postgres_backup import PostgresBackup, PostgresBackupArgs
from components.labels import DATA_ACCESS_LABEL, PLATFORM_LABELS, PSA_RESTRICTED

# The official alpine images run their servers as these users.
POSTGRES_UID = 70
VALKEY_UID = 999


@dataclass(frozen=True, kw_only=True)
class InClusterDataArgs:
    namespace: str
    """Namespace created for the data stores."""
    settings: LocalSettings
    """Images, volume size and StorageClass from the stack config."""
    database: str
    """Database created for the service."""
    username: str
    """Postgres login role."""
    protect: bool
    """Protect the namespace, the StatefulSets and the passwords (which the data on the
    volumes is bound to) from deletion and replacement."""


def _labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": component, "app.kubernetes.io/component": "datastore",
            **PLATFORM_LABELS}


def _restricted_container(**kwargs: Any) -> k8s.core.v1.ContainerArgs:
    return k8s.core.v1.ContainerArgs(
        security_context=restricted_container(), **kwargs)


class InClusterData(pulumi.ComponentResource):
    """A namespace holding one Postgres and one Valkey server."""

    database: DatabaseEndpoint
    cache: CacheEndpoint

    def __init__(self, name: str, args: InClusterDataArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:in_cluster_data:InClusterData", name, None, opts)
        self._name = name
        self._args = args
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.namespace, labels={**PSA_RESTRICTED, **PLATFORM_LABELS}),
            # Deleting the namespace would delete the PersistentVolumeClaims in it.
            opts=self._kept())
        self._namespace = namespace.metadata.name
        self._create_network_policies()

        self.database = self._create_postgres()
        self.cache = self._create_valkey()
        self.register_outputs({"postgres_host": self.database.host,
                               "redis_host": self.cache.host})

    def _kept(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, protect=self._args.protect)

    def _create_network_policies(self) -> None:
        # Deny everything, then admit each store's port from labelled namespaces only. The
        # stores open no connections, so no egress rule is needed at all.
        k8s.networking.v1.NetworkPolicy(
            f"{self._name}-default-deny", metadata=k8s.meta.v1.ObjectMetaArgs(
                name="default-deny", namespace=self._namespace),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                policy_types=["Ingress", "Egress"]),
            opts=pulumi.ResourceOptions(parent=self))
        for role, port in (("postgres", POSTGRES_PORT), ("valkey", REDIS_PORT)):
            k8s.networking.v1.NetworkPolicy(
                f"{self._name}-{role}-clients", metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"{role}-clients", namespace=self._namespace, labels=_labels(role)),
                spec=k8s.networking.v1.NetworkPolicySpecArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=_labels(role)),
                    policy_types=["Ingress"],
                    ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[k8s.networking.v1.NetworkPolicyPeerArgs(
                            namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                                match_labels={DATA_ACCESS_LABEL: "true"}))],
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(
                            protocol="TCP", port=port)])]),
                opts=pulumi.ResourceOptions(parent=self))

    def _secret(self, role: str, data: Mapping[str, pulumi.Input[str]]) -> pulumi.Output[str]:
        # Auto-named and referenced through its output name: a new password makes a new Secret
        # (created before the old one is deleted) and rolls the pod that reads it, instead of a
        # delete-before-replace that would cascade into the StatefulSet.
        secret = k8s.core.v1.Secret(
            f"{self._name}-{role}", metadata=k8s.meta.v1.ObjectMetaArgs(
                namespace=self._namespace, labels=_labels(role)),
            immutable=True, type="Opaque", string_data=dict(data),
            opts=pulumi.ResourceOptions(parent=self))
        return secret.metadata.name

    def _service(self, role: str, port: int) -> str:
        k8s.core.v1.Service(
            f"{self._name}-{role}", metadata=k8s.meta.v1.ObjectMetaArgs(
                name=role, namespace=self._namespace, labels=_labels(role)),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP", selector=_labels(role),
                ports=[k8s.core.v1.ServicePortArgs(name=role, port=port, target_port=port)]),
            opts=pulumi.ResourceOptions(parent=self))
        return f"{role}.{self._args.namespace}.svc.cluster.local"

    def _stateful_set(self, role: str, uid: int, container: k8s.core.v1.ContainerArgs,
                      scratch: Sequence[str]) -> None:
        local = self._args.settings
        volumes = [k8s.core.v1.VolumeArgs(name=volume,
                                          empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs())
                   for volume in scratch]
        k8s.apps.v1.StatefulSet(
            f"{self._name}-{role}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=role, namespace=self._namespace,
                                                labels=_labels(role)),
            spec=k8s.apps.v1.StatefulSetSpecArgs(
                service_name=role, replicas=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=_labels(role)),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=_labels(role)),
                    spec=k8s.core.v1.PodSpecArgs(
                        automount_service_account_token=False,
                        security_context=restricted_pod(uid),
                        containers=[container],
                        volumes=volumes,
                    )),
                volume_claim_templates=[k8s.core.v1.PersistentVolumeClaimArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(name="data"),
                    spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                        access_modes=["ReadWriteOnce"], storage_class_name=local.storage_class,
                        resources=k8s.core.v1.VolumeResourceRequirementsArgs(
                            requests={"storage": local.volume_size})))],
            ),
            opts=self._kept())

    def _create_postgres(self) -> DatabaseEndpoint:
        args = self._args
        # initdb sets the password once: a new one would lock the service out of its data.
        password = random.RandomPassword(f"{self._name}-postgres-password", length=32,
                                         special=False, opts=self._kept())
        secret = self._secret("postgres", {"POSTGRES_PASSWORD": password.result})
        ready = ["pg_isready", "-U", args.username, "-d", args.database, "-h", "127.0.0.1"]
        self._stateful_set("postgres", POSTGRES_UID, _restricted_container(
            name="postgres", image=args.settings.postgres_image,
            ports=[k8s.core.v1.ContainerPortArgs(name="postgres", container_port=POSTGRES_PORT)],
            env=[
                k8s.core.v1.EnvVarArgs(name="POSTGRES_USER", value=args.username),
                k8s.core.v1.EnvVarArgs(name="POSTGRES_DB", value=args.database),
                # A subdirectory: the volume root holds lost+found, which initdb refuses.
                k8s.core.v1.EnvVarArgs(name="PGDATA", value="/var/lib/postgresql/data/pgdata"),
            ],
            env_from=[k8s.core.v1.EnvFromSourceArgs(
                secret_ref=k8s.core.v1.SecretEnvSourceArgs(name=secret))],
            volume_mounts=[
                k8s.core.v1.VolumeMountArgs(name="data", mount_path="/var/lib/postgresql/data"),
                k8s.core.v1.VolumeMountArgs(name="run", mount_path="/var/run/postgresql"),
                k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
            ],
            readiness_probe=k8s.core.v1.ProbeArgs(
                exec_=k8s.core.v1.ExecActionArgs(command=ready), period_seconds=5),
            liveness_probe=k8s.core.v1.ProbeArgs(
                exec_=k8s.core.v1.ExecActionArgs(command=ready), period_seconds=10,
                failure_threshold=6, initial_delay_seconds=30),
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": "100m", "memory": "256Mi"}, limits={"memory": "512Mi"}),
        ), scratch=["run", "tmp"])
        host = self._service("postgres", POSTGRES_PORT)
        local = args.settings
        if local.backup_keep:
            PostgresBackup(f"{self._name}-postgres-backup", PostgresBackupArgs(
                namespace=self._namespace, image=local.postgres_image, uid=POSTGRES_UID,
                host=host, database=args.database, username=args.username,
                password_secret=secret, schedule=local.backup_schedule,
                keep=local.backup_keep, volume_size=local.backup_volume_size,
                storage_class=local.storage_class, server_labels=_labels("postgres"),
                protect=args.protect), opts=pulumi.ResourceOptions(parent=self))
        return DatabaseEndpoint(
            host=pulumi.Output.from_input(host), port=pulumi.Output.from_input(POSTGRES_PORT),
            database=args.database, user=args.username,
            password=pulumi.Output.secret(password.result),
            # Traffic stays on the cluster network, which NetworkPolicy fences in.
            sslmode="disable")

    def _create_valkey(self) -> CacheEndpoint:
        args = self._args
        password = random.RandomPassword(f"{self._name}-valkey-password", length=32,
                                         special=False, opts=self._kept())
        secret = self._secret("valkey", {"VALKEY_PASSWORD": password.result})
        ping = ["sh", "-c",
                'valkey-cli --no-auth-warning -a "$VALKEY_PASSWORD" ping | grep -q PONG']
        self._stateful_set("valkey", VALKEY_UID, _restricted_container(
            name="valkey", image=args.settings.redis_image,
            # Kubernetes expands $(VALKEY_PASSWORD) from the Secret-backed environment.
            args=["valkey-server", "--requirepass", "$(VALKEY_PASSWORD)", "--appendonly", "yes",
                  "--dir", "/data"],
            ports=[k8s.core.v1.ContainerPortArgs(name="valkey", container_port=REDIS_PORT)],
            env_from=[k8s.core.v1.EnvFromSourceArgs(
                secret_ref=k8s.core.v1.SecretEnvSourceArgs(name=secret))],
            volume_mounts=[k8s.core.v1.VolumeMountArgs(name="data", mount_path="/data")],
            readiness_probe=k8s.core.v1.ProbeArgs(
                exec_=k8s.core.v1.ExecActionArgs(command=ping), period_seconds=5),
            liveness_probe=k8s.core.v1.ProbeArgs(
                tcp_socket=k8s.core.v1.TCPSocketActionArgs(port=REDIS_PORT), period_seconds=10,
                initial_delay_seconds=10),
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": "50m", "memory": "128Mi"}, limits={"memory": "256Mi"}),
        ), scratch=[])
        host = self._service("valkey", REDIS_PORT)
        return CacheEndpoint(host=pulumi.Output.from_input(host),
                             port=pulumi.Output.from_input(REDIS_PORT),
                             password=pulumi.Output.secret(password.result), tls=False)
