"""Stack settings: every config key is read and checked here, before any resource exists.

`load_settings()` reads the `agent-platform:` namespace of the running stack through Pulumi's
public config API; `parse_settings()` does the work on plain strings so tests can feed it any
config. Every problem is collected and reported in one `ConfigError`, each line naming the key,
the bad value and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pulumi
import pulumi.runtime

from components.config.backup import BackupSettings, read_backup
from components.config.delivery import DeliverySettings, read_delivery
from components.config.keys import KEYS, KEYS_BY_NAME, SECRET_KEYS_BY_NAME
from components.config.monitoring import MonitoringSettings, read_monitoring
from components.config.nodes import NodeAutoscalingSettings, read_node_autoscaling
from components.config.platform import (
    CacheSettings,
    ClusterSettings,
    DatabaseSettings,
    ImageSettings,
    LocalSettings,
    NetworkSettings,
    check_node_architecture,
    read_cache,
    read_cluster,
    read_database,
    read_image,
    read_local,
    read_network,
)
from components.config.reader import NAMESPACE, ConfigError, ConfigReader, stack_file_values
from components.config.service import ServiceSettings, read_service
from components.config.tracing import TracingSettings, read_tracing

Environment = Literal["local", "dev", "prod"]
ENVIRONMENTS: tuple[Environment, ...] = ("local", "dev", "prod")
_AWS_NAME = re.compile(r"^[a-z][a-z0-9-]{1,31}$")

__all__ = ["ConfigError", "Settings", "load_settings", "parse_settings", "secret_config"]


@dataclass(frozen=True)
class Settings:
    """Everything the program needs to know about the stack it is deploying."""

    project: str
    stack: str
    environment: Environment
    protect_state: bool
    """`protect` on every stateful resource; lifted only to tear the stack down."""
    tags: Mapping[str, str]
    network: NetworkSettings
    cluster: ClusterSettings
    nodes: NodeAutoscalingSettings
    database: DatabaseSettings
    backup: BackupSettings
    cache: CacheSettings
    image: ImageSettings
    local: LocalSettings
    service: ServiceSettings
    delivery: DeliverySettings
    monitoring: MonitoringSettings
    tracing: TracingSettings

    @property
    def on_aws(self) -> bool:
        return on_aws(self.environment)

    @property
    def resource_prefix(self) -> str:
        """Short, stack-unique prefix for AWS names that must be unique per account/region."""
        return f"{self.project}-{self.stack}"


def on_aws(environment: str) -> bool:
    return environment != "local"


def parse_settings(raw: Mapping[str, str], *, project: str, stack: str,
                   secret_keys: Collection[str] = ()) -> Settings:
    """Builds the settings from raw config strings (keys without the namespace).

    `secret_keys` names the keys that were set as Pulumi secrets; secret values are only
    checked for presence here and never stored in the settings.
    """
    r = ConfigReader(dict(raw))
    unknown = sorted(set(raw) - set(KEYS_BY_NAME) - set(SECRET_KEYS_BY_NAME))
    for key in unknown:
        r.fail(key, raw[key], "unknown key; the documented keys are listed in Pulumi.yaml")

    environment = r.choice("environment", ENVIRONMENTS)
    prod = environment == "prod"
    network = read_network(r, prod)
    cluster = read_cluster(r, prod)
    nodes = read_node_autoscaling(r)
    database = read_database(r, prod)
    backup = read_backup(r, prod)
    cache = read_cache(r, prod)
    image = read_image(r, prod)
    if environment != "local":
        check_node_architecture(r, cluster.node_instance_types, image.platform)
        prefix = f"{project}-{stack}"
        if not _AWS_NAME.match(prefix):
            r.errors.append(f"stack name {stack!r} is invalid: {prefix!r} prefixes AWS resource "
                            "names, so use lower-case letters, digits and '-' (32 characters "
                            "in all at most)")
    local = read_local(r)
    secrets = frozenset(secret_keys)
    service = read_service(r, prod, secrets)
    monitoring = read_monitoring(r, secrets)
    tracing = read_tracing(r, secrets, monitoring.enabled)
    delivery = read_delivery(r, monitoring.enabled)
    # One error for a domain the program cannot serve, whichever reason comes first.
    if service.ingress.domain and not on_aws(environment):
        r.fail("domainName", service.ingress.domain, "the local stack has no ACM or Route 53: "
               "leave it empty and use ingressHost")
    elif service.ingress.domain and not service.ingress.alb:
        r.fail("domainName", service.ingress.domain, "the program's certificate and DNS record "
               "are for an ALB: set ingressClassName to alb, or leave domainName empty")
    if service.ingress.alb_gateway and not on_aws(environment):
        r.fail("ingressClassName", "alb", "an ALB Gateway needs the AWS Load Balancer "
               "Controller of an AWS stack: name the local cluster's GatewayClass with "
               "gatewayClassName and an IngressClass other than alb")
    if service.ingress.domain and monitoring.grafana_host:
        r.fail("grafanaIngressHost", monitoring.grafana_host,
               "the certificate domainName makes covers the API's name only: set "
               "grafanaDomainName instead, which gets its own certificate and record")
    if monitoring.grafana_domain and not (service.ingress.hosted_zone_id
                                          and on_aws(environment) and service.ingress.alb):
        r.fail("grafanaDomainName", monitoring.grafana_domain,
               "needs an AWS stack with ingressClassName alb, domainName and hostedZoneId (the "
               "zone its certificate and record are made in)")
    if prod and monitoring.grafana_host and not service.ingress.tls:
        r.fail("grafanaIngressHost", monitoring.grafana_host,
               "prod serves Grafana over TLS only: configure ingressCertificateArn (ALB) or "
               "ingressTlsSecret first")
    protect_state = r.boolean("protectState")
    owner = r.string("owner")
    cost_center = r.string("costCenter")

    if r.errors:
        lines = "\n  - ".join(r.errors)
        raise ConfigError(f"stack {stack!r} has invalid config:\n  - {lines}")

    tags = {"Project": project, "Stack": stack, "Environment": environment, "Owner": owner,
            "CostCenter": cost_center, "ManagedBy": "pulumi"}
    return Settings(project, stack, environment, protect_state, tags, network, cluster, nodes,
                    database, backup, cache, image, local, service, delivery, monitoring,
                    tracing)


def load_settings() -> Settings:
    """Reads and checks the config of the stack being deployed."""
    stack = pulumi.get_stack()
    # Pulumi's API reads a key by name and lists none, so the stack file's keys are added: a
    # misspelt key there is then reported rather than silently ignored.
    names = {key.name for key in KEYS} | set(SECRET_KEYS_BY_NAME) | set(
        stack_file_values(Path.cwd(), stack))
    raw = {name: value for name in names
           if (value := pulumi.runtime.get_config(f"{NAMESPACE}:{name}")) is not None}
    secret_keys = {name for name in raw if pulumi.runtime.is_config_secret(f"{NAMESPACE}:{name}")}
    return parse_settings(raw, project=pulumi.get_project(), stack=stack,
                          secret_keys=secret_keys)


def secret_config(key: str) -> pulumi.Output[str] | None:
    """A secret key's value as a Pulumi secret, or None when unset."""
    assert key in SECRET_KEYS_BY_NAME, key
    return pulumi.Config(NAMESPACE).get_secret(key)
