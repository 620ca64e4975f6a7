"""Service settings from the environment (the Kubernetes ConfigMap and Secret, or `make dev`).

Production is the default: outside ENVIRONMENT=development the service refuses to start with a
missing or development connection string or an LLM provider that has no API key.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEVELOPMENT_DATABASE_URL = "postgresql://agent:agent@127.0.0.1:5432/agent"
DEVELOPMENT_REDIS_URL = "redis://127.0.0.1:6379/0"

ProviderName = Literal["offline", "openai", "anthropic"]

# USD per million tokens (input, output), keyed `provider:model`, from the providers' published
# list prices (llm/prices.json, which the platform's cost estimate reads too). Check them
# against your contract and override or extend with LLM_PRICES_JSON; unknown models cost 0.
PRICES_FILE = Path(__file__).resolve().parent.parent / "llm" / "prices.json"
DEFAULT_PRICES: dict[str, tuple[str, str]] = {
    model: (entry["input"], entry["output"])
    for model, entry in json.loads(PRICES_FILE.read_text())["usd_per_million_tokens"].items()}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore")

    environment: Literal["development", "production"] = "production"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # JSON lines everywhere; `console` is for a person reading a terminal, and only on request.
    log_format: Literal["json", "console"] = "json"
    database_url: SecretStr = SecretStr(DEVELOPMENT_DATABASE_URL)
    redis_url: SecretStr = SecretStr(DEVELOPMENT_REDIS_URL)
    ready_timeout_seconds: float = Field(default=2.0, gt=0, le=30)

    # API
    max_request_bytes: int = Field(default=1_048_576, ge=1024)
    rate_limit: str = Field(default="120/minute", pattern=r"^\d+/(second|minute|hour)$")
    api_key_cache_seconds: float = Field(default=10.0, ge=0, le=300)

    # Queue and workers
    queue_name: str = "research"
    # Runs wait on the LLM most of the time: one process holds hundreds (make bench-app).
    worker_concurrency: int = Field(default=8, ge=1, le=1024)
    worker_metrics_port: int = Field(default=9100, ge=0, le=65535)
    # /health on the metrics port fails once the event loop has not run for this long.
    worker_liveness_seconds: float = Field(default=60.0, gt=0)
    job_timeout_seconds: int = Field(default=300, ge=1)
    job_retries: int = Field(default=3, ge=1, le=20)
    job_heartbeat_seconds: int = Field(default=30, ge=1)
    shutdown_grace_seconds: int = Field(default=60, ge=0)
    sweep_interval_seconds: int = Field(default=15, ge=1)
    # How long a worker waits for Postgres or Redis to come back before handing a run back
    # to the queue: longer than an RDS Multi-AZ failover (60-120 s). Waiting never spends one
    # of the run's attempts.
    outage_tolerance_seconds: float = Field(default=300.0, ge=0)

    # Agent budgets
    agent_max_iterations: int = Field(default=4, ge=1, le=20)
    agent_max_tokens: int = Field(default=20_000, ge=100)
    agent_wall_clock_seconds: float = Field(default=240.0, gt=0)

    # LLM providers: the first is primary, the rest are tried in order when it fails.
    # A comma-separated list in the environment, e.g. LLM_PROVIDERS=openai,anthropic,offline.
    llm_providers: Annotated[list[ProviderName], NoDecode] = Field(
        default_factory=lambda: list[ProviderName](["offline"]), min_length=1)
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4.1-mini"
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    anthropic_model: str = "claude-haiku-4-5"
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    llm_max_attempts: int = Field(default=3, ge=1, le=10)
    llm_backoff_max_seconds: float = Field(default=20.0, ge=0)
    llm_failure_threshold: int = Field(default=3, ge=1)
    llm_cooldown_seconds: float = Field(default=60.0, ge=0)
    llm_cache_ttl_seconds: int = Field(default=3600, ge=0)
    llm_prices_json: str = ""

    # Tracing: spans are exported over OTLP/HTTP only when an endpoint is set.
    otel_exporter_otlp_endpoint: str | None = None

    @field_validator("llm_providers", mode="before")
    @classmethod
    def _split_providers(cls, value: object) -> object:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_unusable_settings(self) -> Settings:
        # In every environment: a provider without its key cannot serve a single call, and a
        # worker that starts anyway would fail every run the API accepted (make dev included).
        for provider, key in (("openai", self.openai_api_key),
                              ("anthropic", self.anthropic_api_key)):
            if provider in self.llm_providers and not (key and key.get_secret_value()):
                raise ValueError(f"LLM_PROVIDERS includes {provider} but "
                                 f"{provider.upper()}_API_KEY is empty")
        if self.environment == "development":
            return self
        # Silently falling back to development values would point production at localhost.
        for name, value, default in (
            ("DATABASE_URL", self.database_url, DEVELOPMENT_DATABASE_URL),
            ("REDIS_URL", self.redis_url, DEVELOPMENT_REDIS_URL),
        ):
            if value.get_secret_value() == default:
                raise ValueError(f"{name} is unset or the development default; set it "
                                 "(or ENVIRONMENT=development for local runs)")
        return self

    def prices(self) -> dict[str, tuple[Decimal, Decimal]]:
        """USD per million tokens, keyed `provider:model`."""
        table = dict(DEFAULT_PRICES)
        if self.llm_prices_json:
            table.update({k: (str(v[0]), str(v[1]))
                          for k, v in json.loads(self.llm_prices_json).items()})
        return {k: (Decimal(v[0]), Decimal(v[1])) for k, v in table.items()}


@lru_cache
def get_settings() -> Settings:
    return Settings()


_CREDENTIALS = re.compile(r"(://[^/:@\s]*:)[^@\s]*@")


def settings_problems(error: ValidationError) -> list[str]:
    """One line per bad variable: its name, its value with secrets masked, what is wrong."""
    secret_fields = {name for name, field in Settings.model_fields.items()
                     if field.annotation in (SecretStr, SecretStr | None)}
    lines = []
    for problem in error.errors():
        reason = str((problem.get("ctx") or {}).get("error") or problem["msg"])
        if not problem["loc"]:  # a rule over several variables names them in its message
            lines.append(reason)
            continue
        field = str(problem["loc"][0])
        value = problem.get("input")
        shown = "[redacted]" if field in secret_fields else _CREDENTIALS.sub(r"\1***@",
                                                                              str(value))
        lines.append(f"{field.upper()} = {shown!r} is invalid: {reason}")
    return lines

