"""Pod templates of the service: hardened to Pod Security Admission `restricted`, spread over zones
and nodes, reading the service's environment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config.service import Resources
from components.kubernetes.hardening import restricted_container, restricted_pod
from components.kubernetes.service.context import ServiceContext
from components.labels import AWS_ROLE_ANNOTATION, NODE_POOL_LABEL

APP_UID = 10001
ZONE_KEY = "topology.kubernetes.io/zone"
HOST_KEY = "kubernetes.io/hostname"


@dataclass(frozen=True)
class Pods:
    """Builds the containers and pod templates of every role of the service."""

    ctx: ServiceContext
    service_account: pulumi.Input[str]
    env_from: Sequence[k8s.core.v1.EnvFromSourceArgs]

    def container(self, role: str, resources: Resources,
                  **kwargs: Any) -> k8s.core.v1.ContainerArgs:
        def field(path: str) -> k8s.core.v1.EnvVarSourceArgs:
            return k8s.core.v1.EnvVarSourceArgs(
                field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path=path))

        env = [k8s.core.v1.EnvVarArgs(name="POD_NAME", value_from=field("metadata.name")),
               k8s.core.v1.EnvVarArgs(name="POD_NAMESPACE",
                                      value_from=field("metadata.namespace")),
               k8s.core.v1.EnvVarArgs(name="NODE_NAME", value_from=field("spec.nodeName")),
               # Where a span came from, in the trace backend (the OTel SDK reads this).
               k8s.core.v1.EnvVarArgs(
                   name="OTEL_RESOURCE_ATTRIBUTES",
                   value="k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE),"
                         f"k8s.node.name=$(NODE_NAME),k8s.container.name={role}")]
        return k8s.core.v1.ContainerArgs(
            name=role, image=self.ctx.args.image, image_pull_policy="IfNotPresent",
            args=[role], env=env, env_from=list(self.env_from),
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": resources.cpu_request, "memory": resources.memory_request},
                limits={"cpu": resources.cpu_limit, "memory": resources.memory_limit}),
            security_context=restricted_container(run_as_non_root=True),
            volume_mounts=[k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")],
            **kwargs)

    def template(self, component: str, container: k8s.core.v1.ContainerArgs, *,
                 grace_seconds: int, restart_policy: str | None = None,
                 spread: bool = True, annotations: Mapping[str, pulumi.Input[str]] | None = None,
                 ) -> k8s.core.v1.PodTemplateSpecArgs:
        annotations = dict(annotations or {})
        role = self.ctx.settings.service_account_role_arn
        if role:
            annotations[AWS_ROLE_ANNOTATION] = role  # a new role rolls the pods
        return k8s.core.v1.PodTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(
                labels=self.ctx.labels(component), annotations=annotations or None),
            spec=k8s.core.v1.PodSpecArgs(
                service_account_name=self.service_account,
                automount_service_account_token=False,
                enable_service_links=False,
                restart_policy=restart_policy,
                termination_grace_period_seconds=grace_seconds,
                security_context=restricted_pod(APP_UID),
                topology_spread_constraints=self._spread(component) if spread else None,
                node_selector={NODE_POOL_LABEL: "workers" if component == "worker" else "api"}
                if self.ctx.args.node_pools else None,
                containers=[container],
                volumes=[k8s.core.v1.VolumeArgs(
                    name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(
                        size_limit="256Mi"))],
            ))

    def _spread(self, component: str) -> list[k8s.core.v1.TopologySpreadConstraintArgs]:
        zones = "DoNotSchedule" if self.ctx.settings.zone_spread_required else "ScheduleAnyway"
        return [
            k8s.core.v1.TopologySpreadConstraintArgs(
                topology_key=key, max_skew=1, when_unsatisfiable=mode,
                label_selector=k8s.meta.v1.LabelSelectorArgs(
                    match_labels=self.ctx.selector(component)),
                # Only pods of the same ReplicaSet count, so a rollout is not skewed by the
                # pods it is replacing.
                match_label_keys=["pod-template-hash"])
            for key, mode in ((ZONE_KEY, zones), (HOST_KEY, "ScheduleAnyway"))]


def scrape_annotations(port: int) -> dict[str, pulumi.Input[str]]:
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port),
            "prometheus.io/path": "/metrics"}
