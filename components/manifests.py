"""What the AWS and Kubernetes layers share about Kubernetes manifests: the vendored files they
apply, and the Gateway API versions (the cluster add-ons make the ALB GatewayClass, the service
its Gateway and routes)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

GATEWAY_API = "gateway.networking.k8s.io/v1"
ALB_GATEWAY_API = "gateway.k8s.aws/v1beta1"
"""The AWS Load Balancer Controller's Gateway configuration kinds."""

_PROJECT_ROOT = Path(__file__).parents[1]


def vendored_files(directories: Iterable[Path]) -> list[str]:
    """The YAML files of `directories` for a ConfigGroup, relative to the project, where Pulumi
    runs the program: the same input from every checkout."""
    return [str(path.relative_to(_PROJECT_ROOT))
            for directory in directories for path in sorted(directory.glob("*.yaml"))]
