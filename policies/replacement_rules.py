"""When pulumi-kubernetes replaces an object instead of updating it, and what that does on day 2.

The provider replaces an object when a change touches one of the fields below (its `forceNew`
table, provider/pkg/provider in pulumi-kubernetes; `metadata.name` and `metadata.namespace` for
every kind). How it replaces depends on the name:

- auto-named (no `metadata.name` in the program; the provider names it `<logical>-<random>` and
  marks it `pulumi.com/autonamed: "true"`): create-before-delete under a new name. Dependents
  see a new name and are updated in place; a Deployment rolls its pods.
- a fixed `metadata.name`: the new object cannot exist beside the old one, so the provider asks
  for delete-before-replace, and the engine first deletes, then replaces, every resource that
  depends on it (explicitly or through an Output). For a Deployment that is a full outage.

The policy pack and the tests read this one table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

AUTONAMED_ANNOTATION = "pulumi.com/autonamed"
IDENTITY_FIELDS = ("metadata.name", "metadata.namespace")

REPLACED_WHEN_CHANGED: dict[str, tuple[str, ...]] = {
    "ConfigMap": ("data", "binaryData"),
    "Secret": ("type", "stringData", "data"),
    "Service": ("spec.clusterIP", "spec.type"),
    "PersistentVolumeClaim": ("spec",),
    "Job": ("spec.selector", "spec.template"),
    "Deployment": ("spec.selector",),
    "StatefulSet": ("spec.podManagementPolicy", "spec.revisionHistoryLimit", "spec.selector",
                    "spec.serviceName", "spec.volumeClaimTemplates"),
    "StorageClass": ("parameters", "provisioner"),
    "RoleBinding": ("roleRef",),
    "ClusterRoleBinding": ("roleRef",),
    "ResourceQuota": ("spec.scopes",),
}
"""Fields whose change replaces an object of that kind (besides its name and namespace)."""

CONTENT_KINDS = ("ConfigMap", "Secret", "Job")
"""Kinds whose replacing fields are their content, which routine changes (a setting, a key, an
image) rewrite: with a fixed name, every such change is a delete-before-replace."""

DEPENDENT_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Rollout", "Job",
                   "CronJob", "Release")
"""What must never be replaced as a side effect: workloads, and Helm releases (a replaced
release is an uninstall and a reinstall)."""


def value_at(props: Mapping[str, Any], path: str) -> Any:
    value: Any = props
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def kind_of(resource_type: str) -> str | None:
    """The Kubernetes kind of a type token (`kubernetes:apps/v1:Deployment` -> `Deployment`)."""
    if not resource_type.startswith("kubernetes:"):
        return None
    return resource_type.rsplit(":", 1)[-1]


def has_fixed_name(props: Mapping[str, Any]) -> bool:
    """The program set `metadata.name` itself (the provider did not choose it)."""
    metadata = props.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    return bool(metadata.get("name")) and annotations.get(AUTONAMED_ANNOTATION) != "true"


def replacing_fields(kind: str) -> tuple[str, ...]:
    return IDENTITY_FIELDS + REPLACED_WHEN_CHANGED.get(kind, ())


def replaced_by(kind: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The fields whose change from `before` to `after` makes the provider replace the object."""
    return [path for path in replacing_fields(kind)
            if value_at(before, path) != value_at(after, path)]
