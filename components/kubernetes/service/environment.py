"""The environment the service's pods read: settings in a ConfigMap, credentials in a Secret.

Both are auto-named and immutable. A change of data replaces them create-before-delete under a new
name, and that new name in the pod templates rolls the Deployments in place. A fixed name would
force delete-before-replace, which the engine cascades into replacing every workload that depends
on it (a full outage): see README "What a change does".
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes.service.context import QUEUE_NAME, WORKER_METRICS_PORT, ServiceContext


def config_data(ctx: ServiceContext) -> dict[str, str]:
    """Non-secret settings, as the service reads them from its environment."""
    s = ctx.settings
    data = {
        "ENVIRONMENT": "production",
        "LOG_LEVEL": s.log_level,
        "RATE_LIMIT": s.rate_limit,
        "QUEUE_NAME": QUEUE_NAME,
        "WORKER_CONCURRENCY": str(s.worker_concurrency),
        "WORKER_METRICS_PORT": str(WORKER_METRICS_PORT),
        "JOB_TIMEOUT_SECONDS": str(s.job_timeout_seconds),
        "SHUTDOWN_GRACE_SECONDS": str(s.job_timeout_seconds),
        "AGENT_WALL_CLOCK_SECONDS": str(max(1, s.job_timeout_seconds - 10)),
        "LLM_PROVIDERS": ",".join(s.llm.providers),
        "OPENAI_MODEL": s.llm.openai_model,
        "ANTHROPIC_MODEL": s.llm.anthropic_model,
    }
    if s.llm.openai_base_url:
        data["OPENAI_BASE_URL"] = s.llm.openai_base_url
    if ctx.args.tracing_endpoint:
        data.update({
            "OTEL_EXPORTER_OTLP_ENDPOINT": ctx.args.tracing_endpoint,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": str(ctx.args.trace_sample_ratio),
        })
    return data


def secret_data(ctx: ServiceContext) -> dict[str, pulumi.Input[str]]:
    """Credentials: connection strings with passwords, and the LLM API keys."""
    cache = ctx.args.cache
    return {
        # libpq form; the service adapts it for asyncpg and keeps sslmode.
        "DATABASE_URL": ctx.args.database.url(),
        "REDIS_URL": cache.url(),
        # KEDA's Redis scaler reads it from here (TriggerAuthentication, scaling.py).
        "REDIS_PASSWORD": cache.password,
        **ctx.args.llm_api_keys,
    }


@dataclass(frozen=True)
class Environment:
    env_from: list[k8s.core.v1.EnvFromSourceArgs]
    """The pods' `envFrom`: the ConfigMap and the Secret by their current names."""
    secret_name: pulumi.Output[str]


def environment(ctx: ServiceContext) -> Environment:
    """Creates the ConfigMap and the Secret."""
    config = k8s.core.v1.ConfigMap(
        f"{ctx.name}-config", metadata=ctx.metadata("config"),
        # Never edited in place: each version is a new object, so kubelets stop watching it.
        immutable=True, data=config_data(ctx), opts=ctx.child())
    secret = k8s.core.v1.Secret(
        f"{ctx.name}-secrets", metadata=ctx.metadata("secrets"),
        immutable=True, type="Opaque", string_data=secret_data(ctx), opts=ctx.child())
    return Environment(env_from=[
        k8s.core.v1.EnvFromSourceArgs(
            config_map_ref=k8s.core.v1.ConfigMapEnvSourceArgs(name=config.metadata.name)),
        k8s.core.v1.EnvFromSourceArgs(
            secret_ref=k8s.core.v1.SecretEnvSourceArgs(name=secret.metadata.name)),
    ], secret_name=secret.metadata.name)
