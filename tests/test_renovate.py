"""Every version pin in the repository is one Renovate reads (renovate.json), and the README's
version table lists it: a pin added where no rule looks goes stale silently, so it fails here.

What counts as a pin: Helm chart tuples and tagged image constants in components/, the
autoscaler tags and the default EKS minor (components/versions.py), the local stack's data
images (config defaults), the Dockerfile's base images, the Go tools the Makefile builds, every
Python requirement, the npm test tooling, and every GitHub Action.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from components.config.keys import KEYS
from components.versions import CLUSTER_AUTOSCALER_IMAGE_TAGS, DEFAULT_KUBERNETES_VERSION

ROOT = Path(__file__).resolve().parent.parent
CONFIG: dict[str, Any] = json.loads((ROOT / "renovate.json").read_text())
README = (ROOT / "README.md").read_text()
# name[extras]==version, the version with an optional PEP 440 epoch (`N!`).
_EXACT_REQUIREMENT = re.compile(r"[A-Za-z0-9_.-]+(\[[\w,]+\])?==(\d+!)?[\w.]+")
_SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


class Pin(NamedTuple):
    file: str
    name: str
    version: str


def _file_pattern(pattern: str) -> re.Pattern[str]:
    assert pattern.startswith("/") and pattern.endswith("/"), pattern
    return re.compile(pattern[1:-1])


def _renovate_regex(pattern: str) -> re.Pattern[str]:
    """Renovate's named groups `(?<name>...)` as Python's `(?P<name>...)`."""
    return re.compile(pattern.replace("(?<", "(?P<"))


def _files(patterns: list[str]) -> list[Path]:
    compiled = [_file_pattern(p) for p in patterns]
    return [path for path in sorted(ROOT.rglob("*"))
            if path.is_file() and not {"venv", "node_modules", ".git"} & set(path.parts)
            and any(c.search(path.relative_to(ROOT).as_posix()) for c in compiled)]


def custom_manager_pins() -> set[Pin]:
    """What renovate.json's regex managers extract from the repository."""
    found = set()
    for manager in CONFIG["customManagers"]:
        for path in _files(manager["managerFilePatterns"]):
            text = path.read_text()
            for pattern in manager["matchStrings"]:
                for match in _renovate_regex(pattern).finditer(text):
                    groups = match.groupdict()
                    name = groups.get("depName") or manager["depNameTemplate"]
                    found.add(Pin(path.relative_to(ROOT).as_posix(), name,
                                  groups["currentValue"]))
    return found


def component_pins() -> set[Pin]:
    """Chart tuples, tagged images, the autoscaler tags, the EKS minor, the data images."""
    pins = set()
    for path in sorted((ROOT / "components").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for node in ast.parse(path.read_text()).body:
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name)):
                continue
            name = node.targets[0].id
            if name.endswith("_CHART"):
                chart, version, _ = ast.literal_eval(node.value)
                pins.add(Pin(relative, chart, version))
            elif name == "GATEWAY_API_VERSION":
                pins.add(Pin(relative, "sigs.k8s.io/gateway-api",
                             str(ast.literal_eval(node.value))))
            elif name == "KARPENTER_VERSION":
                pins.add(Pin(relative, "public.ecr.aws/karpenter/karpenter",
                             str(ast.literal_eval(node.value))))
            elif name.endswith("_IMAGE") and isinstance(node.value, ast.Constant) and \
                    ":" in str(node.value.value):
                image, _, tag = str(node.value.value).rpartition(":")
                pins.add(Pin(relative, image, tag))
    pins |= {Pin("components/versions.py", "registry.k8s.io/autoscaling/cluster-autoscaler",
                 tag) for tag in CLUSTER_AUTOSCALER_IMAGE_TAGS.values()}
    pins.add(Pin("components/versions.py", "amazon-eks", DEFAULT_KUBERNETES_VERSION))
    (actionlint,) = re.findall(r"^ACTIONLINT_VERSION := (\S+)$",
                               (ROOT / "Makefile").read_text(), re.MULTILINE)
    pins.add(Pin("Makefile", "github.com/rhysd/actionlint", actionlint))
    for key in KEYS:
        if key.name in ("localPostgresImage", "localRedisImage"):
            image, _, tag = str(key.default).rpartition(":")
            pins |= {Pin(f, image, tag) for f in ("components/config/keys.py", "Pulumi.yaml",
                                                  "docs/configuration.md")}
    return pins


def test_every_component_pin_is_read_by_a_renovate_rule() -> None:
    pins = component_pins()
    # Sanity: the collector sees the pins this repository is known to have.
    assert {p.name for p in pins} >= {"kube-prometheus-stack", "aws-load-balancer-controller",
                                     "cluster-autoscaler", "jaegertracing/jaeger", "amazon-eks",
                                     "postgres"}
    assert pins - custom_manager_pins() == set()


def test_renovate_reads_no_pin_the_tests_do_not_know() -> None:
    """The other direction: a rule that matches something unexpected is a wrong rule."""
    assert custom_manager_pins() - component_pins() == set()


def _requirement_files() -> list[Path]:
    return _files(CONFIG["pip_requirements"]["managerFilePatterns"])


def test_every_python_requirement_is_pinned_where_renovate_reads_it() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in _requirement_files()}
    assert files == {"requirements.txt", "requirements-dev.txt", "app/requirements.txt",
                     "policies/requirements.txt"}
    for path in _requirement_files():
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-r"):
                assert _EXACT_REQUIREMENT.fullmatch(line), (path, line)


def test_npm_tooling_is_pinned_exactly_where_renovate_reads_it() -> None:
    manifests = _files(CONFIG["npm"]["managerFilePatterns"])
    assert {p.parent.name for p in manifests} == {"crd_schemas"}
    for manifest in manifests:
        for name, version in json.loads(manifest.read_text())["dependencies"].items():
            assert re.fullmatch(r"\d+\.\d+\.\d+", version), (manifest, name, version)


def test_base_images_are_tagged_where_renovate_reads_them() -> None:
    (dockerfile,) = _files(CONFIG["dockerfile"]["managerFilePatterns"])
    bases = re.findall(r"^FROM (\S+)", dockerfile.read_text(), re.MULTILINE)
    assert bases and all(re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*", b) for b in bases)


def workflow_actions() -> list[str]:
    actions = []
    for path in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        for line in path.read_text().splitlines():
            if (stripped := line.strip().removeprefix("- ")).startswith("uses:"):
                actions.append(stripped.removeprefix("uses:").strip())
    return actions


def test_actions_are_pinned_by_commit_with_their_tag() -> None:
    actions = workflow_actions()
    assert actions and all(_SHA_PIN.match(a) for a in actions), actions
    # Renovate's github-actions manager reads .github/workflows, keeping SHA and comment.
    assert "github-actions" in CONFIG["enabledManagers"]
    assert "helpers:pinGitHubActionDigests" in CONFIG["extends"]


@pytest.mark.parametrize("manager", ["custom.regex", "pip_requirements", "npm",
                                     "github-actions", "dockerfile"])
def test_every_manager_the_pins_need_is_enabled(manager: str) -> None:
    assert manager in CONFIG["enabledManagers"]


def test_the_eks_version_is_never_merged_automatically() -> None:
    (rule,) = [r for r in CONFIG["packageRules"] if "amazon-eks" in r.get("matchDepNames", [])]
    assert rule["automerge"] is False
    automerging = [r for r in CONFIG["packageRules"] if r.get("automerge")]
    assert all("amazon-eks" not in r.get("matchDepNames", []) and "custom.regex" not in
               r.get("matchManagers", []) for r in automerging)
    assert not CONFIG.get("automerge")


def test_the_readme_version_table_lists_every_pin() -> None:
    rows = [line for line in README.splitlines() if line.startswith("| ")]
    listed = {(cells[1], cells[2]) for line in rows
              if len(cells := [c.strip(" `") for c in line.split("|")]) > 3}
    names = {p.name: p.version for p in component_pins()
             if p.name != "registry.k8s.io/autoscaling/cluster-autoscaler"}
    missing = {(n, v) for n, v in names.items() if (n, v) not in listed}
    assert missing == set()
    autoscaler = next(cells for line in rows
                      if (cells := [c.strip(" `") for c in line.split("|")])[1:2] == [
                          "registry.k8s.io/autoscaling/cluster-autoscaler"])
    assert all(tag in autoscaler[2] for tag in CLUSTER_AUTOSCALER_IMAGE_TAGS.values())
    actions = {a.split("@")[0]: a.split("# ")[1] for a in workflow_actions()}
    assert set(actions.items()) <= listed
