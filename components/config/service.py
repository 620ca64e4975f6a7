"""Settings of the agent service's Kubernetes deployment, read from the stack config.

Kept apart from the platform settings in `components.config.settings` because they change for
different reasons: these are sized and tuned per release of the service, those per environment.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal, cast

from components.config.patterns import DNS_NAME, HTTP_URL, IAM_ROLE, K8S_NAME
from components.config.reader import ConfigReader

Provider = Literal["openai", "anthropic", "offline"]
Edge = Literal["ingress", "gateway"]
EDGES: tuple[Edge, ...] = ("ingress", "gateway")
IngressScheme = Literal["internal", "internet-facing"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

PROVIDERS: tuple[Provider, ...] = ("openai", "anthropic", "offline")
PROVIDERS_WITH_KEYS = {"openai": "openaiApiKey", "anthropic": "anthropicApiKey"}

_CPU = re.compile(r"^(?P<milli>[1-9]\d*)m$|^(?P<cores>\d+(\.\d{1,3})?)$")
_MEMORY = re.compile(r"^(?P<n>[1-9]\d*)(?P<unit>Mi|Gi)$")
_HOSTED_ZONE = re.compile(r"^Z[A-Z0-9]{1,31}$")
_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$")
_RATE = re.compile(r"^[1-9]\d*/(second|minute|hour)$")
# The Kubernetes name of a ConfigMap key or model id: no spaces, no quotes.
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


@dataclass(frozen=True)
class Resources:
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


@dataclass(frozen=True)
class IngressSettings:
    enabled: bool
    class_name: str
    host: str | None
    scheme: IngressScheme
    certificate_arn: str | None
    tls_secret: str | None
    controller_namespace: str
    domain: str | None = None
    """`domainName`: the program makes the certificate and the DNS record for `host`."""
    hosted_zone_id: str | None = None
    edge: Edge = "ingress"
    gateway_class: str | None = None
    """`gatewayClassName`, with `edge: gateway`."""

    @property
    def alb(self) -> bool:
        return self.class_name == "alb"

    @property
    def alb_gateway(self) -> bool:
        """`edge: gateway` served by an ALB: the program makes the GatewayClass."""
        return self.edge == "gateway" and self.alb

    @property
    def tls(self) -> bool:
        return bool(self.certificate_arn or self.domain if self.alb else self.tls_secret)


@dataclass(frozen=True)
class LlmSettings:
    providers: tuple[Provider, ...]
    egress_cidrs: tuple[str, ...]
    openai_base_url: str | None
    openai_model: str
    anthropic_model: str
    expected_runs_per_day: int = 0
    """For the cost estimate only: the service never reads it."""

    @property
    def priced_model(self) -> str:
        """`provider:model` of the first provider, the one most runs use."""
        provider = self.providers[0]
        model = {"openai": self.openai_model, "anthropic": self.anthropic_model}.get(
            provider, "offline-extractive-v1")
        return f"{provider}:{model}"


@dataclass(frozen=True)
class ServiceSettings:
    namespace: str
    api_min_replicas: int
    api_max_replicas: int
    api_resources: Resources
    worker_min_replicas: int
    worker_max_replicas: int
    worker_resources: Resources
    worker_concurrency: int
    job_timeout_seconds: int
    worker_do_not_disrupt: bool
    keda_enabled: bool
    worker_queue_target: int
    zone_spread_required: bool
    ingress: IngressSettings
    service_account_role_arn: str | None
    llm: LlmSettings
    rate_limit: str
    log_level: LogLevel


def cpu_millicores(value: str) -> int | None:
    match = _CPU.match(value)
    if not match:
        return None
    if match["milli"]:
        return int(match["milli"])
    return round(float(match["cores"]) * 1000) or None


def memory_mebibytes(value: str) -> int | None:
    match = _MEMORY.match(value)
    if not match:
        return None
    return int(match["n"]) * (1024 if match["unit"] == "Gi" else 1)


def _resources(r: ConfigReader, role: str) -> Resources:
    values = {}
    for kind, parse, shape in (("Cpu", cpu_millicores, "CPU such as 500m or 2"),
                               ("Memory", memory_mebibytes, "memory such as 512Mi or 1Gi")):
        amounts = {}
        for bound in ("Request", "Limit"):
            key = f"{role}{kind}{bound}"
            value = r.string(key)
            amount = parse(value)
            if amount is None:
                r.fail(key, value, f"expected {shape}")
            amounts[bound] = amount
            values[key] = value
        request, limit = amounts["Request"], amounts["Limit"]
        if request is not None and limit is not None and limit < request:
            r.fail(f"{role}{kind}Limit", values[f"{role}{kind}Limit"],
                   f"must be at least {role}{kind}Request ({values[f'{role}{kind}Request']})")
    return Resources(values[f"{role}CpuRequest"], values[f"{role}CpuLimit"],
                     values[f"{role}MemoryRequest"], values[f"{role}MemoryLimit"])


def _replicas(r: ConfigReader, role: str, prod: bool) -> tuple[int, int]:
    low = r.integer(f"{role}MinReplicas", 1, 100)
    high = r.integer(f"{role}MaxReplicas", 1, 500)
    if low > high:
        r.fail(f"{role}MinReplicas", low, f"must not exceed {role}MaxReplicas ({high})")
    if prod and low < 2:
        r.fail(f"{role}MinReplicas", low, "prod keeps at least 2 pods so one can be lost")
    return low, high


def _domain(r: ConfigReader, host: str | None,
            certificate: str | None) -> tuple[str | None, str | None]:
    """`domainName` and `hostedZoneId`, which come together and replace the hand-made host and
    certificate."""
    domain = r.optional_string("domainName")
    zone = r.optional_string("hostedZoneId")
    if domain and not DNS_NAME.match(domain):
        r.fail("domainName", domain, "expected a lower-case DNS name such as api.example.com")
    if zone and not _HOSTED_ZONE.match(zone):
        r.fail("hostedZoneId", zone, "expected a Route 53 hosted zone id such as "
                                     "Z0123456789ABCDEFGHIJ")
    if bool(domain) != bool(zone):
        key, value = ("hostedZoneId", zone) if domain else ("domainName", domain)
        r.fail(key, value, "domainName and hostedZoneId go together: set both, or neither")
    if domain and certificate:
        r.fail("ingressCertificateArn", certificate,
               "with domainName the program makes the certificate: leave it empty")
    if domain and host and host != domain:
        r.fail("ingressHost", host, f"with domainName the API answers on {domain}: leave it "
                                    "empty")
    return domain, zone


def _ingress(r: ConfigReader, prod: bool) -> IngressSettings:
    enabled = r.boolean("ingressEnabled")
    class_name = r.matching("ingressClassName", K8S_NAME, "an IngressClass name such as alb")
    host = r.optional_string("ingressHost")
    if host and not DNS_NAME.match(host):
        r.fail("ingressHost", host, "expected a lower-case DNS name such as api.example.com")
    scheme = r.choice("ingressScheme",
                      cast(tuple[IngressScheme, ...], ("internal", "internet-facing")))
    certificate = r.optional_string("ingressCertificateArn")
    if certificate and not _ACM_ARN.match(certificate):
        r.fail("ingressCertificateArn", certificate,
               "expected arn:aws:acm:<region>:<account>:certificate/<id>")
    tls_secret = r.optional_string("ingressTlsSecret")
    if tls_secret and not K8S_NAME.match(tls_secret):
        r.fail("ingressTlsSecret", tls_secret, "expected a Secret name such as api-tls")
    domain, zone = _domain(r, host, certificate)
    if domain:
        enabled, host = True, domain
    controller = r.matching("ingressControllerNamespace", K8S_NAME,
                            "a namespace name such as kube-system")
    edge = r.choice("edge", EDGES)
    gateway_class = r.optional_matching("gatewayClassName", K8S_NAME,
                                        "a GatewayClass name such as eg")
    if edge == "gateway" and enabled and not gateway_class:
        r.fail("gatewayClassName", None, "edge gateway needs a GatewayClass name: with "
                                         "ingressClassName alb the one the program creates for "
                                         "the ALB (e.g. alb), otherwise your cluster's Gateway "
                                         "API implementation's (e.g. eg or traefik)")
    ingress = IngressSettings(enabled, class_name, host, scheme, certificate, tls_secret,
                              controller, domain, zone, edge, gateway_class)
    if prod and enabled and not ingress.tls:
        key = "ingressCertificateArn" if ingress.alb else "ingressTlsSecret"
        r.fail(key, certificate if ingress.alb else tls_secret,
               "prod serves the API over TLS only: set it (or set ingressEnabled to false)")
    return ingress


def _llm(r: ConfigReader, secret_keys: frozenset[str], set_keys: frozenset[str]) -> LlmSettings:
    providers = r.strings("llmProviders")
    if not providers:
        r.fail("llmProviders", [], "list at least one of " + ", ".join(PROVIDERS))
    if len(set(providers)) != len(providers):
        r.fail("llmProviders", list(providers), "list each provider once")
    for provider in providers:
        if provider not in PROVIDERS:
            r.fail("llmProviders", provider, "allowed values are " + ", ".join(PROVIDERS))
        elif provider in PROVIDERS_WITH_KEYS:
            key = PROVIDERS_WITH_KEYS[provider]
            if key not in set_keys:
                r.fail(key, None, f"llmProviders lists {provider}, so set its API key with "
                                  f"`pulumi config set --secret {key} <key>`")
    for key in sorted(set_keys & set(PROVIDERS_WITH_KEYS.values()) - secret_keys):
        r.fail(key, "[redacted]", "API keys must be Pulumi secrets: "
                                  f"`pulumi config set --secret {key} <key>`")
    cidrs = r.strings("llmEgressCidrs")
    if not cidrs:
        r.fail("llmEgressCidrs", [], "at least one CIDR such as 0.0.0.0/0")
    for cidr in cidrs:
        try:
            ipaddress.IPv4Network(cidr, strict=True)
        except ValueError:
            r.fail("llmEgressCidrs", cidr, "expected IPv4 CIDRs such as 203.0.113.0/24")
    base_url = r.optional_string("openaiBaseUrl")
    if base_url and not HTTP_URL.match(base_url):
        r.fail("openaiBaseUrl", base_url, "expected an http(s) URL such as http://vllm:8000/v1")
    openai_model = r.matching("openaiModel", _MODEL, "a model id such as gpt-4.1-mini")
    anthropic_model = r.matching("anthropicModel", _MODEL,
                                 "a model id such as claude-haiku-4-5")
    return LlmSettings(cast(tuple[Provider, ...], providers), cidrs, base_url, openai_model,
                       anthropic_model, r.integer("expectedRunsPerDay", 0, 100_000_000))


def read_service(r: ConfigReader, prod: bool, secret_keys: frozenset[str]) -> ServiceSettings:
    """Reads the service's keys; `secret_keys` names the keys that were set as secrets."""
    namespace = r.matching("serviceNamespace", K8S_NAME, "a namespace name such as agent")
    api_min, api_max = _replicas(r, "api", prod)
    worker_min, worker_max = _replicas(r, "worker", prod)
    timeout = r.integer("jobTimeoutSeconds", 10, 3600)
    role = r.optional_string("serviceAccountRoleArn")
    if role and not IAM_ROLE.match(role):
        r.fail("serviceAccountRoleArn", role, "expected arn:aws:iam::<account>:role/<name>")
    rate = r.matching("rateLimit", _RATE, "a rate such as 120/minute")
    level = r.choice("logLevel", cast(tuple[LogLevel, ...], ("DEBUG", "INFO", "WARNING",
                                                              "ERROR")))
    return ServiceSettings(
        namespace=namespace,
        api_min_replicas=api_min, api_max_replicas=api_max,
        api_resources=_resources(r, "api"),
        worker_min_replicas=worker_min, worker_max_replicas=worker_max,
        worker_resources=_resources(r, "worker"),
        worker_concurrency=r.integer("workerConcurrency", 1, 1024),
        job_timeout_seconds=timeout,
        worker_do_not_disrupt=r.boolean("workerDoNotDisrupt"),
        keda_enabled=r.boolean("kedaEnabled"),
        worker_queue_target=r.integer("workerQueueTarget", 1, 10_000),
        zone_spread_required=r.boolean("zoneSpreadRequired"),
        ingress=_ingress(r, prod),
        service_account_role_arn=role,
        llm=_llm(r, secret_keys, r.present_secret_keys),
        rate_limit=rate,
        log_level=level,
    )
