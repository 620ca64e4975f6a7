"""Stack config: documented in one place, production by default, bad values refused clearly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config.keys import KEYS, SECRET_KEYS
from components.config.reference import configuration_markdown, pulumi_yaml
from components.config.settings import ConfigError, Settings, parse_settings
from harness import ROOT, STACKS, stack_settings

PREFIX = "agent-platform:"


def settings_for(stack: str, **overrides: Any) -> Settings:
    return stack_settings(stack, overrides)


def config_error(stack: str, **overrides: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        settings_for(stack, **overrides)
    return str(caught.value)


def test_pulumi_yaml_is_generated_from_the_declaration() -> None:
    assert (ROOT / "Pulumi.yaml").read_text() == pulumi_yaml(), \
        "Pulumi.yaml is out of date: run `make config-docs`"
    documented = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert list(documented) == [key.name for key in KEYS]
    for key in KEYS:
        spec = documented[key.name]
        assert (spec["type"], spec["default"], spec["description"]) == (
            key.type, key.default, key.description), key.name


def test_configuration_reference_is_generated_from_the_declaration() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert page == configuration_markdown(), \
        "docs/configuration.md is out of date: run `make config-docs`"
    for name in [key.name for key in KEYS] + [key.name for key in SECRET_KEYS]:
        assert f"| `{name}` |" in page
    # What dev sets instead of the production default is shown beside it.
    assert "| `natGateways` | string | `per-az` | `single` |" in page


def test_secret_keys_are_not_declared_with_defaults() -> None:
    # A declared key without a default would be required in every stack; with a default it
    # could be set in plain text. Secret keys are therefore documented, not declared.
    documented = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert not {key.name for key in SECRET_KEYS} & set(documented)


YAML_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list}


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_use_the_declared_types(stack: str) -> None:
    # The Pulumi CLI checks stack values against the types declared in Pulumi.yaml.
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    declared = {key.name: key.type for key in KEYS}
    for full_key, value in config.items():
        namespace, key = full_key.split(":", 1)
        if namespace != "agent-platform":
            continue
        assert isinstance(value, YAML_TYPES[declared[key]]), f"{stack}: {key} = {value!r}"


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_is_valid(stack: str) -> None:
    assert settings_for(stack).environment == stack


def test_defaults_are_the_production_settings() -> None:
    settings = parse_settings({}, project="agent-platform", stack="prod")
    assert settings.environment == "prod"
    assert settings.network.nat_gateways == "per-az"
    assert settings.cluster.endpoint_public_access is False
    assert settings.cluster.node_min_size >= 3
    db = settings.database
    assert (db.multi_az, db.deletion_protection, db.final_snapshot, db.performance_insights) == (
        True, True, True, True)
    assert db.backup_retention_days >= 14
    assert settings.cache.nodes >= 2


def test_dev_spells_out_every_saving() -> None:
    dev = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    for key in ("natGateways", "dbMultiAz", "dbDeletionProtection", "dbFinalSnapshot",
                "dbBackupRetentionDays", "dbInstanceClass", "cacheNodes", "nodeCapacityType"):
        assert f"{PREFIX}{key}" in dev, f"Pulumi.dev.yaml should set {key} explicitly"


@pytest.mark.parametrize(("stack", "overrides", "expected"), [
    ("dev", {"environment": "staging"},
     'agent-platform:environment = "staging" is invalid: allowed values are local, dev, prod'),
    ("dev", {"nodeMinSize": -1},
     "agent-platform:nodeMinSize = -1 is invalid: must be between 1 and 1000"),
    ("dev", {"nodeMaxSize": 0},
     "agent-platform:nodeMaxSize = 0 is invalid: must be between 1 and 1000"),
    ("dev", {"nodeMinSize": 4, "nodeDesiredSize": 4, "nodeMaxSize": 3},
     "agent-platform:nodeMinSize = 4 is invalid: must not exceed nodeMaxSize (3)"),
    ("dev", {"nodeDesiredSize": 9},
     "agent-platform:nodeDesiredSize = 9 is invalid: must be between nodeMinSize (2) and "
     "nodeMaxSize (5)"),
    ("dev", {"nodeMinSize": "three"},
     'agent-platform:nodeMinSize = "three" is invalid: expected a whole number'),
    ("dev", {"dbInstanceClass": "t4g.micro"},
     'agent-platform:dbInstanceClass = "t4g.micro" is invalid: expected an RDS class such as '
     "db.t4g.micro"),
    ("dev", {"cacheNodeType": "r7g.large"},
     'agent-platform:cacheNodeType = "r7g.large" is invalid: expected a node type such as '
     "cache.t4g.micro"),
    ("dev", {"nodeInstanceTypes": ["m7i large"]},
     'agent-platform:nodeInstanceTypes = "m7i large" is invalid: expected an EC2 type'),
    ("dev", {"nodeInstanceTypes": ["m7g.large"]},
     'agent-platform:nodeInstanceTypes = "m7g.large" is invalid: imagePlatform is linux/amd64'),
    ("dev", {"vpcCidr": "10.0.0.0/33"},
     'agent-platform:vpcCidr = "10.0.0.0/33" is invalid: expected an IPv4 network'),
    ("dev", {"vpcCidr": "10.0.0.1/16"},
     'agent-platform:vpcCidr = "10.0.0.1/16" is invalid: expected an IPv4 network'),
    ("dev", {"vpcCidr": "10.0.0.0/24"},
     'agent-platform:vpcCidr = "10.0.0.0/24" is invalid: the VPC needs a /20 or larger block'),
    ("dev", {"publicAccessCidrs": ["300.1.2.0/24"]},
     'agent-platform:publicAccessCidrs = "300.1.2.0/24" is invalid: expected CIDRs'),
    ("dev", {"publicAccessCidrs": "0.0.0.0/0"},
     'agent-platform:publicAccessCidrs = "0.0.0.0/0" is invalid: expected a list of strings'),
    ("dev", {"dbMultiAz": "yes"},
     'agent-platform:dbMultiAz = "yes" is invalid: expected true or false'),
    ("dev", {"dbMaxAllocatedStorageGb": 10},
     "agent-platform:dbMaxAllocatedStorageGb = 10 is invalid: must be between 20 and 65536"),
    ("dev", {"dbAllocatedStorageGb": 200},
     "agent-platform:dbMaxAllocatedStorageGb = 100 is invalid: must be at least "
     "dbAllocatedStorageGb (200)"),
    ("dev", {"dbUsername": "postgres"},
     'agent-platform:dbUsername = "postgres" is invalid: reserved by Postgres/RDS'),
    ("dev", {"adminPrincipalArns": ["alice"]},
     'agent-platform:adminPrincipalArns = "alice" is invalid: expected arn:aws:iam::'),
    ("dev", {"clusterLogTypes": ["api", "everything"]},
     'agent-platform:clusterLogTypes = "everything" is invalid: allowed values are api, audit'),
    ("dev", {"natGateways": "two"},
     'agent-platform:natGateways = "two" is invalid: allowed values are per-az, single'),
    ("dev", {"kubernetesVersion": "latest"},
     'agent-platform:kubernetesVersion = "latest" is invalid: allowed values are 1.33, 1.34, '
     "1.35"),
    ("prod", {"kubernetesVersion": "1.32"},
     'agent-platform:kubernetesVersion = "1.32" is invalid: allowed values are 1.33, 1.34, '
     "1.35"),
    ("dev", {"dbBackupRetentionDays": 0},
     "agent-platform:dbBackupRetentionDays = 0 is invalid: must be between 1 and 35"),
    ("dev", {"nodeCount": 3},
     'agent-platform:nodeCount = "3" is invalid: unknown key'),
    ("local", {"localPostgresImage": "postgres:latest"},
     'agent-platform:localPostgresImage = "postgres:latest" is invalid: pin a version tag'),
    ("local", {"localRedisImage": "valkey/valkey"},
     'agent-platform:localRedisImage = "valkey/valkey" is invalid: pin a version tag'),
    ("local", {"localVolumeSize": "5GB"},
     'agent-platform:localVolumeSize = "5GB" is invalid: expected a size such as 5Gi'),
    ("local", {"localRegistry": "http://localhost:5001"},
     'agent-platform:localRegistry = "http://localhost:5001" is invalid: expected host[:port]'),
])
def test_bad_config_names_key_value_and_what_is_allowed(
        stack: str, overrides: dict[str, Any], expected: str) -> None:
    assert expected in config_error(stack, **overrides)


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"endpointPublicAccess": True},
     "agent-platform:publicAccessCidrs = [] is invalid: a public EKS endpoint in prod needs an "
     "allow-list without 0.0.0.0/0"),
    ({"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]},
     'agent-platform:publicAccessCidrs = ["0.0.0.0/0"] is invalid: a public EKS endpoint'),
    ({"dbMultiAz": False}, "agent-platform:dbMultiAz = false is invalid: prod requires true"),
    ({"dbDeletionProtection": False},
     "agent-platform:dbDeletionProtection = false is invalid: prod requires true"),
    ({"dbFinalSnapshot": False},
     "agent-platform:dbFinalSnapshot = false is invalid: prod requires true"),
    ({"dbBackupRetentionDays": 7},
     "agent-platform:dbBackupRetentionDays = 7 is invalid: prod keeps at least 14 days"),
    ({"natGateways": "single"},
     'agent-platform:natGateways = "single" is invalid: prod requires per-az'),
    ({"nodeMinSize": 2, "nodeDesiredSize": 2},
     "agent-platform:nodeMinSize = 2 is invalid: prod keeps at least 3 nodes"),
    ({"cacheNodes": 1}, "agent-platform:cacheNodes = 1 is invalid: prod needs a replica"),
    ({"availabilityZoneCount": 2},
     "agent-platform:availabilityZoneCount = 2 is invalid: prod spans at least 3"),
    ({"clusterLogTypes": ["api"]},
     "agent-platform:clusterLogTypes = [\"api\"] is invalid: prod must log api, audit, "
     "authenticator (missing audit, authenticator)"),
])
def test_prod_refuses_insecure_or_fragile_settings(overrides: dict[str, Any],
                                                   expected: str) -> None:
    assert expected in config_error("prod", **overrides)


def test_the_same_settings_are_allowed_in_dev() -> None:
    settings = settings_for("dev", dbMultiAz=False, dbBackupRetentionDays=7, cacheNodes=1,
                            natGateways="single")
    assert settings.database.backup_retention_days == 7


def test_every_problem_is_reported_at_once() -> None:
    message = config_error("dev", nodeMinSize=0, dbInstanceClass="big", vpcCidr="nope")
    assert "nodeMinSize" in message and "dbInstanceClass" in message and "vpcCidr" in message
    assert message.startswith("stack 'dev' has invalid config:")


def test_stack_names_that_cannot_name_aws_resources_are_refused() -> None:
    raw = {"environment": "dev"}
    with pytest.raises(ConfigError, match="stack name 'Team_Dev' is invalid"):
        parse_settings(raw, project="agent-platform", stack="Team_Dev")


def test_graviton_nodes_are_accepted_with_an_arm64_image() -> None:
    settings = settings_for("dev", imagePlatform="linux/arm64",
                            nodeInstanceTypes=["m7g.large", "c7gn.xlarge"])
    assert settings.cluster.node_instance_types == ("m7g.large", "c7gn.xlarge")


def test_bad_config_registers_no_resource(render_with: Any) -> None:
    from harness import Rendered

    captured: list[Rendered] = []
    with pytest.raises(ConfigError, match="nodeMinSize"):
        captured.append(render_with("prod", {"nodeMinSize": 0}))
    assert not captured


DIGEST_REF = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/agent@sha256:" + "c" * 64


@pytest.mark.parametrize(("stack", "ref", "expected"), [
    ("prod", "registry.example.com/agent:1.4.2",
     'agent-platform:imageRef = "registry.example.com/agent:1.4.2" is invalid: prod deploys an '
     "immutable image: pin it by digest, registry/repository@sha256:<64 hex digits>"),
    ("dev", "registry.example.com/agent",
     'agent-platform:imageRef = "registry.example.com/agent" is invalid: expected '
     "registry/repository@sha256:<64 hex digits> (or, outside prod, registry/repository:tag)"),
    ("dev", "registry.example.com/agent:latest",
     'agent-platform:imageRef = "registry.example.com/agent:latest" is invalid: latest is '
     "refused: pin a version tag or, better, a digest"),
    ("local", "Agent Service!", 'agent-platform:imageRef = "Agent Service!" is invalid'),
])
def test_image_ref_must_be_pinned(stack: str, ref: str, expected: str) -> None:
    assert expected in config_error(stack, imageRef=ref)


@pytest.mark.parametrize("ref", [DIGEST_REF, "localhost:5001/agent-service:1.4.2"])
def test_image_ref_accepts_digests_and_outside_prod_tags(ref: str) -> None:
    assert settings_for("dev", imageRef=ref).image.ref == ref


@pytest.mark.parametrize("stack", STACKS)
def test_image_ref_replaces_the_build(render_with: Any, stack: str) -> None:
    rendered = render_with(stack, {"imageRef": DIGEST_REF})
    assert not rendered.of_type("docker:index/image:Image")
    assert rendered.outputs["image_ref"] == DIGEST_REF
    for deployment in rendered.of_type("kubernetes:apps/v1:Deployment"):
        if deployment.inputs["metadata"]["namespace"] == "agent-service":
            (main,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
            assert main["image"] == DIGEST_REF


def test_protect_state_is_a_boolean() -> None:
    assert 'agent-platform:protectState = "maybe" is invalid: expected true or false' in \
        config_error("prod", protectState="maybe")
    assert settings_for("prod").protect_state is True


def test_a_misspelt_key_in_the_stack_file_is_reported(render_with: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Pulumi's API reads keys by name, so the program lists the stack file's keys itself.
    stack_file = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())
    stack_file["config"]["agent-platform:apiMaxReplica"] = 5
    (tmp_path / "Pulumi.local.yaml").write_text(yaml.safe_dump(stack_file))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r'agent-platform:apiMaxReplica = "5" is invalid: '
                                          "unknown key"):
        render_with("local", {"apiMaxReplica": 5})


def test_booleans_and_numbers_are_parsed_strictly() -> None:
    assert settings_for("prod", protectState="False").protect_state is False
    assert 'agent-platform:nodeMinSize = "3.5" is invalid: expected a whole number' in \
        config_error("prod", nodeMinSize="3.5")
    assert 'agent-platform:adminPrincipalArns = "[1, 2]" is invalid: expected a list of ' \
           "strings" in config_error("prod", adminPrincipalArns="[1, 2]")
