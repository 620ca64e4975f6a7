"""Every Kubernetes object every stack registers is valid for the cluster's version."""

from __future__ import annotations

import pytest
from kubernetes_validate import validate
from kubernetes_validate.utils import ValidationError

from components.config_schema import KEYS_BY_NAME
from harness import STACKS, Rendered, stack_config

# Custom resources have no schema in kubernetes-validate; their CRDs come with the charts that
# install them. The tests of the components that create them check their fields, and any other
# custom kind fails here until it is listed.
CUSTOM_KINDS = {("keda.sh/v1alpha1", "ScaledObject"),
                ("monitoring.coreos.com/v1", "ServiceMonitor"),
                ("monitoring.coreos.com/v1", "PodMonitor"),
                ("monitoring.coreos.com/v1", "PrometheusRule")}


def cluster_version(stack: str) -> str:
    version = stack_config(stack).get("agent-platform:kubernetesVersion")
    return f"{version or KEYS_BY_NAME['kubernetesVersion'].default}.0"


@pytest.mark.parametrize("stack", STACKS)
def test_objects_match_the_kubernetes_schema_strictly(stacks: dict[str, Rendered],
                                                      stack: str) -> None:
    objects = list(stacks[stack].kubernetes_objects())
    assert objects, stack
    for obj in objects:
        if (obj.inputs.get("apiVersion"), obj.inputs.get("kind")) in CUSTOM_KINDS:
            continue
        try:
            validate(dict(obj.inputs), cluster_version(stack), strict=True)
        except ValidationError as error:
            pytest.fail(f"{obj.urn}: {error}")


def test_the_validator_rejects_an_unknown_field() -> None:
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
           "spec": {"ports": [{"port": 80}], "typo": True}}
    with pytest.raises(ValidationError):
        validate(bad, "1.34.0", strict=True)
