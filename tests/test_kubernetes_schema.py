"""Every Kubernetes object every stack registers is valid for the cluster's version."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from kubernetes_validate import validate
from kubernetes_validate.utils import ValidationError

from components.config.keys import KEYS_BY_NAME
from harness import ROOT, STACKS, Rendered, stack_config

# Custom resources have no schema in kubernetes-validate. They are checked against the schemas of
# their CRDs instead (Argo Rollouts', KEDA's and the Prometheus Operator's, packaged by
# kubernetes-models on npm and run by tests/crd_schemas/validate.mjs); any other custom kind fails
# there until it is added.
CRD_SCHEMAS = ROOT / "tests" / "crd_schemas"
CUSTOM_KINDS = {("argoproj.io/v1alpha1", "Rollout"), ("argoproj.io/v1alpha1", "AnalysisTemplate"),
                ("keda.sh/v1alpha1", "ScaledObject"),
                ("keda.sh/v1alpha1", "TriggerAuthentication"),
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


def validate_custom(objects: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    assert node, "node is required to validate custom resources"
    assert (CRD_SCHEMAS / "node_modules" / "@kubernetes-models").is_dir(), \
        "run `make venv` (npm ci --prefix tests/crd_schemas) first"
    result = subprocess.run([node, str(CRD_SCHEMAS / "validate.mjs")],
                            input=json.dumps(objects), capture_output=True, text=True,
                            timeout=60, check=True)
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_custom_resources_match_their_crd_schemas(stacks: dict[str, Rendered],
                                                  stack: str) -> None:
    custom = [dict(o.inputs) for o in stacks[stack].kubernetes_objects()
              if (o.inputs.get("apiVersion"), o.inputs.get("kind")) in CUSTOM_KINDS]
    assert custom, stack
    results = validate_custom(custom)
    assert len(results) == len(custom)
    failures = [r for r in results if r["error"]]
    assert not failures, failures


def test_the_crd_validator_rejects_a_wrong_type_and_an_unknown_kind() -> None:
    bad = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "w"},
           "spec": {"scaleTargetRef": {"name": "x"}, "minReplicaCount": "two",
                    "triggers": [{"type": "redis", "metadata": {}}]}}
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    results = validate_custom([bad, unknown])
    assert "minReplicaCount must be integer" in results[0]["error"]
    assert "no schema for example.com/v1 Widget" in results[1]["error"]


def test_the_gateway_edge_is_valid_gateway_api() -> None:
    """`edge: gateway` (local): the Gateway and HTTPRoutes against the Gateway API's schemas,
    and their core objects as every stack's are."""
    from harness import render

    stack = render("local", {"edge": "gateway", "gatewayClassName": "eg",
                             "ingressTlsSecret": "api-tls"})
    gateway_kinds = [dict(o.inputs) for o in stack.kubernetes_objects()
                     if str(o.inputs.get("apiVersion", "")).startswith("gateway.networking")]
    assert {o["kind"] for o in gateway_kinds} == {"Gateway", "HTTPRoute"}
    assert len(gateway_kinds) == 3
    results = validate_custom(gateway_kinds)
    assert [r for r in results if r["error"]] == []
    broken = {**gateway_kinds[0], "spec": {**gateway_kinds[0]["spec"], "listeners": [
        {"name": "http", "protocol": "HTTP", "port": "eighty"}]}}
    (result,) = validate_custom([broken])
    assert result["error"]
