"""Security contexts of every pod the platform runs, at Pod Security Admission `restricted`:
non-root, no privilege escalation, no capabilities, read-only root, seccomp RuntimeDefault."""

from __future__ import annotations

import pulumi_kubernetes as k8s


def restricted_container(*, run_as_non_root: bool | None = None) -> k8s.core.v1.SecurityContextArgs:
    """`run_as_non_root` repeats the pod's setting on the container, where the program has always
    written it (the service's pods): left as it is, so no released template changes."""
    return k8s.core.v1.SecurityContextArgs(
        run_as_non_root=run_as_non_root, allow_privilege_escalation=False,
        read_only_root_filesystem=True, capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]))


def restricted_pod(uid: int | None = None, *,
                   fs_group: bool = True) -> k8s.core.v1.PodSecurityContextArgs:
    """Runs as `uid` (user and group; also the volumes' group with `fs_group`), or as the image's
    own non-root user when None."""
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True, run_as_user=uid, run_as_group=uid,
        fs_group=uid if fs_group else None,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"))
