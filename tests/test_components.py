"""Component contracts: naming, content-derived image tags, kubeconfig stability, bad arguments."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_edge import DOMAIN

from components.aws.kubeconfig import eks_kubeconfig
from components.aws.network import subnet_cidrs
from components.delivery.image import context_files, source_tag
from harness import ROOT, Rendered, render

# A component's type token is part of every child's URN: changing one (say, to follow a module
# that moved) would make the engine delete and recreate everything below it. The tokens are the
# released ones, whatever package the class lives in now.
RELEASED_COMPONENT_TYPES = {
    "agent-platform:agent_service:AgentService", "agent-platform:cache:Cache",
    "agent-platform:cluster:Cluster", "agent-platform:cluster_addons:ClusterAddons",
    "agent-platform:database:Database", "agent-platform:image:AppImage",
    "agent-platform:in_cluster_data:InClusterData", "agent-platform:monitoring:Monitoring",
    "agent-platform:network:Network", "agent-platform:registry:Registry",
    "agent-platform:service_network:ServiceNetworkPolicies", "agent-platform:tracing:Tracing",
    "agent-platform:postgres_backup:PostgresBackup", "agent-platform:edge:ApiCertificate",
    "agent-platform:edge:ApiDnsRecord", "agent-platform:backup:DatabaseBackup",
    "agent-platform:karpenter:Karpenter", "agent-platform:rollouts_controller:RolloutsController",
}


def test_components_keep_their_released_type_tokens_and_prefix_children(
        stacks: dict[str, Rendered]) -> None:
    with_domain = render("prod", DOMAIN)
    for rendered in [*stacks.values(), with_domain]:
        components = [r for r in rendered.resources if r.type.startswith("agent-platform:")]
        assert components, rendered.stack
        for component in components:
            assert component.type in RELEASED_COMPONENT_TYPES, component.urn
        names = {c.name for c in components}
        for resource in rendered.resources:
            if resource.type.startswith(("agent-platform:", "pulumi:providers:")):
                continue
            assert resource.name.split("-")[0] in {n.split("-")[0] for n in names}, \
                f"{resource.urn} is not named after a component"


def copy_app(tmp_path: Path) -> Path:
    target = tmp_path / "app"
    shutil.copytree(ROOT / "app", target,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return target


def test_image_tag_is_stable_for_unchanged_source(tmp_path: Path) -> None:
    app = copy_app(tmp_path)
    assert source_tag(app) == source_tag(app) == source_tag(ROOT / "app")


def test_image_tag_changes_when_the_source_changes(tmp_path: Path) -> None:
    app = copy_app(tmp_path)
    before = source_tag(app)
    (app / "agent_service" / "main.py").write_text("# changed\n", encoding="utf-8")
    assert source_tag(app) != before


def test_image_tag_ignores_what_docker_ignores(tmp_path: Path) -> None:
    app = copy_app(tmp_path)
    before = source_tag(app)
    cache = app / "agent_service" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "main.cpython-311.pyc").write_bytes(b"\0bytecode")
    (app / "tests").mkdir(exist_ok=True)
    (app / "tests" / "test_new.py").write_text("x = 1\n", encoding="utf-8")
    assert source_tag(app) == before


def context(tmp_path: Path, ignore: str, files: list[str]) -> Path:
    for name in ["Dockerfile", *files]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name, encoding="utf-8")
    (tmp_path / ".dockerignore").write_text(ignore, encoding="utf-8")
    return tmp_path


def test_ignore_patterns_are_anchored_at_the_context_root(tmp_path: Path) -> None:
    # Docker matches `tests` against the path from the context root only: a nested tests/
    # directory is part of the image, so an edit there must change the tag.
    app = context(tmp_path, "tests\n", ["tests/test_a.py", "agent_service/tests/test_x.py"])
    assert context_files(app) == [".dockerignore", "Dockerfile", "agent_service/tests/test_x.py"]
    before = source_tag(app)
    (app / "agent_service" / "tests" / "test_x.py").write_text("changed", encoding="utf-8")
    assert source_tag(app) != before


def test_ignore_patterns_honour_globstars_and_exceptions(tmp_path: Path) -> None:
    app = context(tmp_path, "# docs\nDockerfile\n**/*.md\n!README.md\ndocs\n!docs/keep.txt\n",
                  ["README.md", "CHANGES.md", "pkg/notes.md", "docs/a.txt", "docs/keep.txt"])
    # The Dockerfile is always sent, even when a pattern matches it.
    assert context_files(app) == [".dockerignore", "Dockerfile", "README.md", "docs/keep.txt"]


def test_kubeconfig_depends_only_on_name_endpoint_and_ca() -> None:
    config = json.loads(eks_kubeconfig("c", "https://x", "CA", "eu-west-1"))
    assert config["clusters"][0]["cluster"] == {"server": "https://x",
                                                "certificate-authority-data": "CA"}
    args = config["users"][0]["user"]["exec"]["args"]
    assert args == ["eks", "get-token", "--cluster-name", "c", "--region", "eu-west-1",
                    "--output", "json"]
    with_role = json.loads(eks_kubeconfig("c", "https://x", "CA", "eu-west-1",
                                          "arn:aws:iam::123456789012:role/deployer"))
    assert with_role["users"][0]["user"]["exec"]["args"][-2:] == [
        "--role-arn", "arn:aws:iam::123456789012:role/deployer"]


def test_kubeconfig_is_unchanged_by_unrelated_cluster_settings(render_with: object) -> None:
    from harness import render

    base = render("dev").outputs["kubeconfig"]
    changed = render("dev", {"clusterLogTypes": ["api", "audit", "authenticator", "scheduler"],
                             "nodeMaxSize": 6}).outputs["kubeconfig"]
    assert base == changed


@pytest.mark.parametrize("zones", [2, 3, 4])
@pytest.mark.parametrize("cidr", ["10.40.0.0/16", "10.0.0.0/20", "172.16.0.0/12"])
def test_subnets_do_not_overlap_and_fit_the_vpc(cidr: str, zones: int) -> None:
    import ipaddress

    private, public = subnet_cidrs(cidr, zones)
    nets = [ipaddress.ip_network(n) for n in private + public]
    assert len(private) == len(public) == zones
    vpc = ipaddress.ip_network(cidr)
    for i, net in enumerate(nets):
        assert net.subnet_of(vpc)  # type: ignore[arg-type]
        for other in nets[i + 1:]:
            assert not net.overlaps(other), (net, other)
    assert min(n.num_addresses for n in nets[:zones]) > max(n.num_addresses for n in nets[zones:])
