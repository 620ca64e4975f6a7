"""Runs the real `__main__.py` offline under Pulumi's mocks and records every resource.

The config a stack sees is what the CLI would pass: the defaults declared in `Pulumi.yaml`
overlaid with `Pulumi.<stack>.yaml`. Mocked providers answer with plausible state so that the
program's `apply` chains run end to end, exactly as in a real deployment.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import runpy
import sys
import threading
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
# The program imports `components` from the project root, as it does under the Pulumi CLI; the
# replacement table is the policy pack's.
for _path in (str(ROOT), str(ROOT / "policies")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from components.config.settings import Settings, parse_settings  # noqa: E402
from replacement_rules import REPLACED_WHEN_CHANGED, value_at  # noqa: E402

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


AUTONAMED = "pulumi.com/autonamed"


@dataclass(frozen=True)
class Resource:
    """One registered resource: its type token, logical name, inputs (camelCase) and options."""

    type: str
    name: str
    inputs: Mapping[str, Any]
    secret_paths: tuple[str, ...] = ()
    """Input paths (e.g. `stringData`) whose values were Pulumi secrets."""
    urn: str = ""
    """The URN the engine gives it: stack, project, the parent types' chain, the name."""
    parent: str | None = None
    """URN of the parent resource; None for resources at the top of the stack."""
    protect: bool = False
    retain_on_delete: bool = False
    """Left in the cloud when the stack deletes it (`pulumi destroy` included)."""
    ignore_changes: tuple[str, ...] = ()
    delete_before_replace: bool = False
    replace_on_changes: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    """The URNs this resource was known by before (from its `aliases` option)."""
    dependency_urns: tuple[str, ...] = ()
    """URNs of what it depends on, explicitly or through an input's Output."""
    custom: bool = True
    """A provider's resource; False for a component (which the engine never replaces)."""
    provider: str = ""
    """Logical name of the provider it was given explicitly (or of its package, for a
    component's `providers`), or ""."""

    def __post_init__(self) -> None:
        if not self.urn:  # a resource a test builds by hand
            object.__setattr__(self, "urn", f"urn:pulumi:test::{PROJECT}::{self.type}::{self.name}")

    @property
    def depends_on(self) -> tuple[str, ...]:
        """Logical names of the resources this one waits for (`depends_on` and input outputs)."""
        return tuple(urn.rsplit("::", 1)[-1] for urn in self.dependency_urns)

    @property
    def autonamed(self) -> bool:
        """A Kubernetes object the provider names itself (`<logical name>-<random suffix>`)."""
        metadata = self.inputs.get("metadata") or {}
        return (metadata.get("annotations") or {}).get(AUTONAMED) == "true"

    @property
    def k8s_name(self) -> str | None:
        return (self.inputs.get("metadata") or {}).get("name")


@dataclass
class Rendered:
    """What a stack registered, in registration order, and its stack outputs."""

    stack: str
    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    invokes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """What the program logged at warning level or above, as the CLI would show it once."""

    def of_type(self, type_token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> Resource:
        matches = self.of_type(type_token)
        assert len(matches) == 1, f"{self.stack}: expected one {type_token}, got {len(matches)}"
        return matches[0]

    def named(self, name: str, type_token: str | None = None) -> Resource:
        matches = [r for r in self.resources
                   if r.name == name and (type_token is None or r.type == type_token)]
        assert len(matches) == 1, f"{self.stack}: expected one resource named {name}"
        return matches[0]

    def by_urn(self) -> dict[str, Resource]:
        return {r.urn: r for r in self.resources}

    def kubernetes_objects(self) -> Iterator[Resource]:
        """Plain Kubernetes objects (not providers, Helm releases or YAML groups)."""
        for r in self.resources:
            if r.type.startswith("kubernetes:") and not r.type.startswith(
                    ("kubernetes:helm.sh/", "kubernetes:yaml/", "pulumi:providers:")):
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


def stack_settings(stack: str, overrides: Mapping[str, Any] | None = None) -> Settings:
    """The stack's settings as the program parses them from that config (no secrets set)."""
    prefix = f"{PROJECT}:"
    keys = {k.removeprefix(prefix): v for k, v in stack_config(stack, overrides).items()
            if k.startswith(prefix)}
    return parse_settings(keys, project=PROJECT, stack=stack)


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
        self.request: dict[str, Any] = {}
        """What the register request of the resource being created carried beyond its inputs."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        secret_paths: list[str] = []
        inputs = plain(dict(args.inputs), secret_paths)
        if _autonamable(args.typ) and not (inputs.get("metadata") or {}).get("name"):
            inputs = _autoname(inputs, args.typ, args.name)
        request = self.request
        self.rendered.resources.append(Resource(
            args.typ, args.name, inputs, tuple(secret_paths), urn=request["urn"],
            parent=request["parent"], protect=request["protect"],
            ignore_changes=request["ignore_changes"],
            retain_on_delete=request["retain_on_delete"],
            delete_before_replace=request["delete_before_replace"],
            replace_on_changes=request["replace_on_changes"], aliases=request["aliases"],
            dependency_urns=request["dependencies"], custom=request["custom"],
            provider=request["provider"]))
        name = inputs.get("name") or args.name
        state: dict[str, Any] = {"name": name,
                                 "arn": f"arn:aws:service:{self.region}:{ACCOUNT}:{args.name}"}
        state.update(inputs)
        state.update(self._state_for(args.typ, args.name, inputs))
        return f"{args.name}-id", state

    def _state_for(self, typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        if typ == "kubernetes:apps/v1:Deployment":
            # The API server's generation moves with every change of the spec; a digest of the
            # spec stands in for it (read by the canary release gate).
            digest = hashlib.sha256(json.dumps(inputs.get("spec"), sort_keys=True).encode())
            return {"metadata": {**inputs.get("metadata", {}),
                                 "generation": int(digest.hexdigest()[:8], 16)}}
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
        if typ == "aws:acm/certificate:Certificate":
            domain = inputs["domainName"]
            return {"domainValidationOptions": [{
                "domainName": domain, "resourceRecordName": f"_0a1b2c.{domain}.",
                "resourceRecordType": "CNAME",
                "resourceRecordValue": "_3d4e5f.xyz.acm-validations.aws."}]}
        if typ == "aws:route53/record:Record":
            return {"fqdn": str(inputs["name"]).rstrip(".")}
        if typ == "kubernetes:networking.k8s.io/v1:Ingress" and \
                (inputs.get("spec") or {}).get("ingressClassName") == "alb":
            # What the AWS Load Balancer Controller writes once it has made the ALB.
            return {"status": {"loadBalancer": {"ingress": [{
                "hostname": f"k8s-{name}-0123456789.{self.region}.elb.amazonaws.com"}]}}}
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
        if args.token == "aws:eks/getAddonVersion:getAddonVersion":
            addon, minor = args.args["addonName"], args.args["kubernetesVersion"]
            return {"addonName": addon, "kubernetesVersion": minor,
                    "version": f"v{minor}-{addon}-eksbuild.1", "id": addon}
        if args.token == "aws:lb/getHostedZoneId:getHostedZoneId":
            # Route 53's zone for application load balancers in the region (eu-west-1's).
            return {"id": "Z32O12XQLNTSW2", "loadBalancerType": "application"}
        if args.token == "aws:lb/getLoadBalancer:getLoadBalancer":
            # The ALB the load balancer controller tagged for a Gateway (`namespace/name`).
            gateway = args.args["tags"]["gateway.k8s.aws.alb/stack"].replace("/", "-")
            return {"arn": f"arn:aws:elasticloadbalancing:{self.region}:{ACCOUNT}:"
                           f"loadbalancer/app/k8s-{gateway}/0123456789abcdef",
                    "dnsName": f"internal-k8s-{gateway}-0123456789.{self.region}.elb.amazonaws.com",
                    "zoneId": "Z32O12XQLNTSW2", "loadBalancerType": "application",
                    "id": gateway, "tags": args.args["tags"]}
        if args.token == "aws:rds/getInstance:getInstance":
            identifier = args.args["dbInstanceIdentifier"]
            return {"dbInstanceIdentifier": identifier, "id": identifier, "port": 5432,
                    "address": f"{identifier}.cxyz.{self.region}.rds.amazonaws.com",
                    "dbInstanceArn": f"arn:aws:rds:{self.region}:{ACCOUNT}:db:{identifier}"}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/ci",
                    "userId": "AIDACI", "id": ACCOUNT}
        if args.token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {"proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{self.region}.amazonaws.com",
                    "userName": "AWS", "password": "ecr-token", "authorizationToken": "x"}
        raise NotImplementedError(f"the harness mocks no invoke {args.token}")


def _autonamable(type_token: str) -> bool:
    return type_token.startswith("kubernetes:") and not type_token.startswith(
        "kubernetes:helm.sh/")


def _autoname(inputs: dict[str, Any], type_token: str, logical_name: str) -> dict[str, Any]:
    """What pulumi-kubernetes' Check does to an object without `metadata.name`: a name from the
    logical name and a random suffix, marked with the `pulumi.com/autonamed` annotation.

    The provider keeps the name on an update and draws a new one on a replacement, so the
    suffix here is a hash of the fields whose change replaces the object: renders before and
    after a change differ in the name exactly when the real engine would rename it.
    """
    kind = type_token.rsplit(":", 1)[-1]
    replacing = {path: value_at(inputs, path)
                 for path in REPLACED_WHEN_CHANGED.get(kind, ())}
    suffix = hashlib.sha256(json.dumps([logical_name, replacing], sort_keys=True,
                                       default=str).encode()).hexdigest()[:8]
    metadata = dict(inputs.get("metadata") or {})
    metadata["name"] = f"{logical_name}-{suffix}"
    metadata["annotations"] = {**(metadata.get("annotations") or {}), AUTONAMED: "true"}
    return {**inputs, "metadata": metadata}


_register_resource = MockMonitor.RegisterResource
_registering = threading.Lock()
# The mock monitor's URNs keep only the last parent type; the engine's keep the whole chain.
# Mock URN -> the URN the engine would give the same resource.
_engine_urns: dict[str, str] = {}


def _alias_urns(request: Any, urn: str) -> tuple[str, ...]:
    """The URNs a resource's `aliases` stand for: a full URN, or another name or type under the
    same parent (the program renames; the Kubernetes SDK aliases old API versions). A re-parenting
    alias fails here rather than being recorded wrongly."""
    found = []
    prefix, _, name = urn.rpartition("::")
    stack_project, _, qualified = prefix.rpartition("::")
    parents, _, own_type = qualified.rpartition("$")
    for alias in request.aliases:
        spec = alias.spec
        if alias.urn:
            found.append(alias.urn)
        elif spec.parentUrn or spec.noParent or spec.stack or spec.project:
            raise NotImplementedError(f"{urn}: the harness records no re-parenting alias")
        else:
            alias_type = f"{parents}${spec.type or own_type}" if parents else \
                spec.type or own_type
            found.append(f"{stack_project}::{alias_type}::{spec.name or name}")
    return tuple(found)


def _provider_name(reference: str) -> str:
    """`eks-crds` from a provider reference `urn:...::eks-crds::<id>`."""
    return reference.split("::")[-2] if reference else ""


def _register_recording_options(self: MockMonitor, request: Any) -> Any:
    # MockResourceArgs carries neither dependencies nor options, so they come from the request.
    with _registering:
        parent = _engine_urns.get(request.parent)
        qualified = f"{parent.split('::')[2]}${request.type}" if parent else request.type
        urn = f"urn:pulumi:{pulumi.get_stack()}::{PROJECT}::{qualified}::{request.name}"
        if isinstance(self.mocks, RecordingMocks):
            self.mocks.request = {
                "urn": urn, "parent": parent, "protect": bool(request.protect),
                "ignore_changes": tuple(request.ignoreChanges),
                "retain_on_delete": bool(request.retainOnDelete),
                "delete_before_replace": bool(request.deleteBeforeReplace),
                "replace_on_changes": tuple(request.replaceOnChanges),
                "aliases": _alias_urns(request, urn),
                "dependencies": tuple(_engine_urns.get(d, d) for d in request.dependencies),
                "custom": bool(request.custom),
                "provider": _provider_name(request.provider or next(
                    iter(dict(request.providers).values()), "")),
            }
        response = _register_resource(self, request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            _engine_urns[response.urn] = urn
        return response


MockMonitor.RegisterResource = _register_recording_options  # type: ignore[method-assign]


def render(stack: str, overrides: Mapping[str, Any] | None = None,
           secrets: Mapping[str, str] | None = None) -> Rendered:
    """Runs `__main__.py` for `stack` under mocks and returns what it registered.

    `secrets` are keys set as secrets, which the CLI hands over decrypted but flagged.
    Exceptions the program raises (such as a ConfigError) propagate unchanged.
    """
    config = stack_config(stack, {**(overrides or {}), **(secrets or {})})
    secret_keys = [f"{PROJECT}:{key}" for key in secrets or {}]
    rendered = Rendered(stack)
    _engine_urns.clear()
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
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False,
                             logger=_program_logger(rendered))
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


class _Collect(logging.Handler):
    def __init__(self, rendered: Rendered) -> None:
        super().__init__(logging.WARNING)
        self.rendered = rendered

    def emit(self, record: logging.LogRecord) -> None:
        self.rendered.warnings.append(record.getMessage())


def _program_logger(rendered: Rendered) -> logging.Logger:
    """The program's log lines (`pulumi.log`) for this render only, kept rather than printed:
    the reports print each stack's once, as `pulumi up` shows them once per update."""
    logger = logging.getLogger(f"{PROJECT}.program")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.handlers[:] = [_Collect(rendered)]
    return logger


_LOOP: asyncio.AbstractEventLoop | None = None


def _event_loop() -> asyncio.AbstractEventLoop:
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
    asyncio.set_event_loop(_LOOP)
    return _LOOP
