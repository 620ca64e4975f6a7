"""Runs the real `__main__.py` offline under Pulumi's mocks and records every resource.

The config a stack sees is what the CLI would pass: the defaults declared in `Pulumi.yaml`
overlaid with `Pulumi.<stack>.yaml`. Mocked providers answer with plausible state so that the
program's `apply` chains run end to end, exactly as in a real deployment.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func, wait_for_rpcs

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "agent-platform"
STACKS = ("local", "dev", "prod")
ACCOUNT = "123456789012"
# The program imports `components` from the project root, as it does under the Pulumi CLI.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


SECRET_SIG = "4dabf18193072939515e22adb298388d"


def plain(value: Any, secret_paths: list[str] | None = None, path: str = "") -> Any:
    """Inputs as a real provider would see them: secrets unwrapped, whole floats as ints.

    The mock monitor hands over numbers as floats and secrets wrapped in a signature object;
    `secret_paths` collects where secrets were, so tests can check where they travel.
    """
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            if secret_paths is not None:
                secret_paths.append(path)
            return plain(value.get("value"), secret_paths, path)
        return {k: plain(v, secret_paths, f"{path}.{k}".lstrip(".")) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v, secret_paths, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True)
class Resource:
    """One registered resource: its type token, logical name and inputs (camelCase)."""

    type: str
    name: str
    inputs: Mapping[str, Any]
    secret_paths: tuple[str, ...] = ()
    """Input paths (e.g. `stringData`) whose values were Pulumi secrets."""
    depends_on: tuple[str, ...] = ()
    """Logical names of the resources this one waits for (`depends_on` and input outputs)."""

    @property
    def urn(self) -> str:
        return f"urn:pulumi:test::{PROJECT}::{self.type}::{self.name}"


@dataclass
class Rendered:
    """What a stack registered, in registration order, and its stack outputs."""

    stack: str
    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    invokes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def of_type(self, type_token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> Resource:
        matches = self.of_type(type_token)
        assert len(matches) == 1, f"{self.stack}: expected one {type_token}, got {len(matches)}"
        return matches[0]

    def named(self, name: str) -> Resource:
        matches = [r for r in self.resources if r.name == name]
        assert len(matches) == 1, f"{self.stack}: expected one resource named {name}"
        return matches[0]

    def kubernetes_objects(self) -> Iterator[Resource]:
        """Plain Kubernetes objects (not providers, Helm releases or components)."""
        for r in self.resources:
            if r.type.startswith("kubernetes:") and not r.type.startswith(
                    ("kubernetes:helm.sh/", "pulumi:providers:")):
                yield r


def stack_config(stack: str, overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The config the Pulumi CLI hands the program, as `namespace:key` -> string."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    values: dict[str, Any] = {f"{PROJECT}:{key}": spec["default"]
                              for key, spec in project.get("config", {}).items()
                              if "default" in spec}
    stack_file = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text()) or {}
    values.update(stack_file.get("config") or {})
    for key, value in (overrides or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if value is None:
            values.pop(full, None)
        else:
            values[full] = value
    return {key: _as_config_string(value) for key, value in values.items()}


def _as_config_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


class RecordingMocks(pulumi.runtime.Mocks):
    """Records each resource and answers with the state real providers would return."""

    def __init__(self, rendered: Rendered, region: str) -> None:
        self.rendered = rendered
        self.region = region
        self.dependencies: dict[str, tuple[str, ...]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        secret_paths: list[str] = []
        inputs = plain(dict(args.inputs), secret_paths)
        self.rendered.resources.append(Resource(args.typ, args.name, inputs,
                                                tuple(secret_paths),
                                                self.dependencies.pop(args.name, ())))
        name = inputs.get("name") or args.name
        state: dict[str, Any] = {"name": name,
                                 "arn": f"arn:aws:service:{self.region}:{ACCOUNT}:{args.name}"}
        state.update(inputs)
        state.update(self._state_for(args.typ, args.name, inputs))
        return f"{args.name}-id", state

    def _state_for(self, typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        if typ == "aws:eks/cluster:Cluster":
            issuer = f"https://oidc.eks.{self.region}.amazonaws.com/id/EXAMPLE{name.upper()}"
            return {
                "endpoint": f"https://{name}.gr7.{self.region}.eks.amazonaws.com",
                "certificateAuthority": {"data": "LS0tLS1CRUdJTi1DRVJUSUZJQ0FURS0tLS0t"},
                "identities": [{"oidcs": [{"issuer": issuer}]}],
                "vpcConfig": {**inputs.get("vpcConfig", {}),
                              "clusterSecurityGroupId": "sg-cluster0123456789"},
            }
        if typ == "aws:rds/instance:Instance":
            return {"address": f"{inputs['identifier']}.abc.{self.region}.rds.amazonaws.com",
                    "port": 5432}
        if typ == "aws:elasticache/replicationGroup:ReplicationGroup":
            return {"primaryEndpointAddress":
                    f"master.{inputs['replicationGroupId']}.abc.euw1.cache.amazonaws.com"}
        if typ == "aws:ecr/repository:Repository":
            return {"registryId": ACCOUNT, "repositoryUrl":
                    f"{ACCOUNT}.dkr.ecr.{self.region}.amazonaws.com/{inputs['name']}"}
        if typ == "aws:ec2/launchTemplate:LaunchTemplate":
            return {"latestVersion": 1}
        if typ == "random:index/randomPassword:RandomPassword":
            return {"result": "p" * int(inputs.get("length", 16))}
        if typ == "docker:index/image:Image":
            repository = str(inputs["imageName"]).rsplit(":", 1)[0]
            return {"repoDigest": f"{repository}@sha256:{'ab' * 32}"}
        return {}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]] | Any:
        self.rendered.invokes.append((args.token, plain(dict(args.args))))
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{self.region}{suffix}" for suffix in "abcd"]
            return {"names": names, "zoneIds": [f"euw1-az{i}" for i in range(1, 5)]}
        if args.token == "aws:index/getRegion:getRegion":
            return {"region": self.region, "name": self.region, "id": self.region}
        if args.token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {"proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{self.region}.amazonaws.com",
                    "userName": "AWS", "password": "ecr-token", "authorizationToken": "x"}
        raise NotImplementedError(f"the harness mocks no invoke {args.token}")


_register_resource = MockMonitor.RegisterResource


def _register_recording_dependencies(self: MockMonitor, request: Any) -> Any:
    # MockResourceArgs carries no dependencies, so they are taken from the request itself.
    if isinstance(self.mocks, RecordingMocks):
        self.mocks.dependencies[request.name] = tuple(
            urn.rsplit("::", 1)[-1] for urn in request.dependencies)
    return _register_resource(self, request)  # type: ignore[no-untyped-call]


MockMonitor.RegisterResource = _register_recording_dependencies  # type: ignore[method-assign]


def render(stack: str, overrides: Mapping[str, Any] | None = None,
           secrets: Mapping[str, str] | None = None) -> Rendered:
    """Runs `__main__.py` for `stack` under mocks and returns what it registered.

    `secrets` are keys set as secrets, which the CLI hands over decrypted but flagged.
    Exceptions the program raises (such as a ConfigError) propagate unchanged.
    """
    config = stack_config(stack, {**(overrides or {}), **(secrets or {})})
    secret_keys = [f"{PROJECT}:{key}" for key in secrets or {}]
    rendered = Rendered(stack)
    mocks = RecordingMocks(rendered, config.get("aws:region", "eu-west-1"))

    def program() -> None:
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

    # Outputs bind to the loop current when they are made, so the loop is set first. One loop
    # serves every render in the process: Pulumi's runtime creates a loop of its own whenever
    # none is set, and would leave it unclosed.
    loop = _event_loop()
    pulumi.runtime.set_all_config(config, secret_keys)
    # Each render is a fresh deployment: drop the previous run's root stack resource.
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)
    loop.run_until_complete(run_pulumi_func(program))
    loop.run_until_complete(wait_for_rpcs())
    root = runtime_settings.get_root_resource()
    exported = getattr(root, "outputs", {}) or {}
    for key, value in exported.items():
        output = pulumi.Output.from_input(value)
        rendered.outputs[key] = loop.run_until_complete(output.future())
        if loop.run_until_complete(output.is_secret()):
            rendered.secret_outputs.add(key)
    return rendered


_LOOP: asyncio.AbstractEventLoop | None = None


def _event_loop() -> asyncio.AbstractEventLoop:
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
    asyncio.set_event_loop(_LOOP)
    return _LOOP
