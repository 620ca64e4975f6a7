"""Backups of the local stack's in-cluster Postgres: a CronJob dumping it to a volume of its own.

`pg_dump --format=custom` (compressed, restorable table by table with `pg_restore`) from the same
official image as the server, so the client matches the server's major. Each dump is written
under a temporary name and renamed when complete, so a dump that died half-way is never taken
for a good one, and only the newest `keep` dumps stay. The restore is in docs/runbooks.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.endpoints import POSTGRES_PORT
from components.kubernetes.hardening import restricted_container, restricted_pod
from components.labels import PLATFORM_LABELS

MOUNT = "/backups"
# The script the CronJob runs, with `sh -c`; tests/test_postgres_backup.py runs the same text
# against a real Postgres.
BACKUP_SCRIPT = """set -eu
stamp=$(date -u +%Y%m%dT%H%M%SZ)
partial="$BACKUP_DIR/.agent-$stamp.dump.partial"
pg_dump --format=custom --compress=6 --no-owner --file="$partial"
mv "$partial" "$BACKUP_DIR/agent-$stamp.dump"
# Newest first by name (the names sort by time); everything after the first KEEP goes.
ls -1 "$BACKUP_DIR"/agent-*.dump | sort -r | tail -n +$((KEEP + 1)) | xargs -r rm -f --
rm -f "$BACKUP_DIR"/.agent-*.dump.partial
echo "backed up to $BACKUP_DIR/agent-$stamp.dump"
"""
LABELS = {"app.kubernetes.io/name": "postgres-backup", "app.kubernetes.io/component": "backup",
          **PLATFORM_LABELS}


@dataclass(frozen=True, kw_only=True)
class PostgresBackupArgs:
    namespace: pulumi.Input[str]
    image: str
    """The server's image, for a pg_dump of the same major."""
    uid: int
    host: str
    """The Postgres Service in the same namespace."""
    database: str
    username: str
    password_secret: pulumi.Input[str]
    """Secret holding POSTGRES_PASSWORD."""
    schedule: str
    keep: int
    volume_size: str
    storage_class: str | None
    server_labels: dict[str, str]
    """The Postgres pods' labels: the backup pods may reach only them."""
    protect: bool


class PostgresBackup(pulumi.ComponentResource):
    """The backup volume (protected like the data), the CronJob and its NetworkPolicy."""

    def __init__(self, name: str, args: PostgresBackupArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:postgres_backup:PostgresBackup", name, None, opts)
        volume = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-volume", metadata=k8s.meta.v1.ObjectMetaArgs(
                name="postgres-backups", namespace=args.namespace, labels=LABELS),
            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                access_modes=["ReadWriteOnce"], storage_class_name=args.storage_class,
                resources=k8s.core.v1.VolumeResourceRequirementsArgs(
                    requests={"storage": args.volume_size})),
            # The volume binds when the first backup runs (WaitForFirstConsumer classes).
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect,
                                        ignore_changes=["spec.volumeName"]))
        self._network_policies(name, args)
        env = [k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in (
            ("PGHOST", args.host), ("PGPORT", str(POSTGRES_PORT)), ("PGDATABASE", args.database),
            ("PGUSER", args.username), ("BACKUP_DIR", MOUNT), ("KEEP", str(args.keep)))]
        env.append(k8s.core.v1.EnvVarArgs(
            name="PGPASSWORD", value_from=k8s.core.v1.EnvVarSourceArgs(
                secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(
                    name=args.password_secret, key="POSTGRES_PASSWORD"))))
        container = k8s.core.v1.ContainerArgs(
            name="pg-dump", image=args.image, command=["sh", "-c", BACKUP_SCRIPT], env=env,
            security_context=restricted_container(),
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": "50m", "memory": "64Mi"}, limits={"memory": "256Mi"}),
            volume_mounts=[k8s.core.v1.VolumeMountArgs(name="backups", mount_path=MOUNT),
                           k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")])
        pod = k8s.core.v1.PodSpecArgs(
            restart_policy="Never", automount_service_account_token=False,
            enable_service_links=False,
            security_context=restricted_pod(args.uid),
            containers=[container],
            volumes=[
                k8s.core.v1.VolumeArgs(
                    name="backups",
                    persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
                        claim_name=volume.metadata.name)),
                k8s.core.v1.VolumeArgs(
                    name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(
                        size_limit="64Mi"))])
        job = k8s.batch.v1.JobSpecArgs(
            backoff_limit=2, active_deadline_seconds=3000,
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=LABELS), spec=pod))
        k8s.batch.v1.CronJob(
            f"{name}-cronjob", metadata=k8s.meta.v1.ObjectMetaArgs(
                name="postgres-backup", namespace=args.namespace, labels=LABELS),
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=args.schedule, time_zone="Etc/UTC",
                # One dump at a time; a run missed by more than 10 minutes waits for the next.
                concurrency_policy="Forbid", starting_deadline_seconds=600,
                successful_jobs_history_limit=3, failed_jobs_history_limit=3,
                job_template=k8s.batch.v1.JobTemplateSpecArgs(spec=job)),
            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})

    def _network_policies(self, name: str, args: PostgresBackupArgs) -> None:
        """Out of the default-deny namespace: DNS, and Postgres's port on the Postgres pods;
        into those pods, the backup pods (the namespace itself is not a data client)."""
        postgres = k8s.networking.v1.NetworkPolicyPortArgs(port=POSTGRES_PORT, protocol="TCP")
        k8s.networking.v1.NetworkPolicy(
            f"{name}-egress", metadata=k8s.meta.v1.ObjectMetaArgs(
                name="postgres-backup-egress", namespace=args.namespace, labels=LABELS),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=LABELS),
                policy_types=["Egress"],
                egress=[
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        to=[k8s.networking.v1.NetworkPolicyPeerArgs(
                            pod_selector=k8s.meta.v1.LabelSelectorArgs(
                                match_labels=args.server_labels))],
                        ports=[postgres]),
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=53, protocol=p)
                               for p in ("UDP", "TCP")])]),
            opts=pulumi.ResourceOptions(parent=self))
        k8s.networking.v1.NetworkPolicy(
            f"{name}-ingress", metadata=k8s.meta.v1.ObjectMetaArgs(
                name="postgres-from-backup", namespace=args.namespace, labels=LABELS),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=args.server_labels),
                policy_types=["Ingress"],
                ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[k8s.networking.v1.NetworkPolicyPeerArgs(
                        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=LABELS))],
                    ports=[postgres])]),
            opts=pulumi.ResourceOptions(parent=self))
