"""The fallback chain: cache, retries with jittered backoff, failover, cool-down, accounting.

Cool-down state and the response cache live in Redis, so every API and worker process agrees on
which provider is resting and shares cached answers.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal

import redis.asyncio as redis
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from agent_service.core.config import Settings
from agent_service.core.metrics import (
    LLM_CACHE_HITS,
    LLM_CALLS,
    LLM_COST,
    LLM_DURATION,
    LLM_ERRORS,
    LLM_FAILOVERS,
    LLM_TOKENS,
)
from agent_service.core.tracing import llm_span
from agent_service.llm.anthropic_provider import AnthropicProvider
from agent_service.llm.base import LLMRequest, LLMResponse, Provider, ProviderError
from agent_service.llm.offline import OfflineProvider
from agent_service.llm.openai_provider import OpenAIProvider

log = structlog.get_logger(__name__)


class AllProvidersFailed(Exception):
    """Every provider in the chain failed or was cooling down."""


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal


def _retryable(error: BaseException) -> bool:
    return isinstance(error, ProviderError) and error.retryable


class _BackoffHonouringRetryAfter:
    """Full-jitter exponential backoff, but never sooner than the server's Retry-After."""

    def __init__(self, maximum: float) -> None:
        self._jitter = wait_random_exponential(multiplier=0.5, max=maximum)
        self._maximum = maximum

    def __call__(self, state: RetryCallState) -> float:
        wait = self._jitter(state)
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, ProviderError) and error.retry_after is not None:
            wait = max(wait, min(error.retry_after, self._maximum))
        return float(wait)


class LLMRouter:
    def __init__(self, providers: Sequence[Provider], client: redis.Redis, settings: Settings,
                 prices: Mapping[str, tuple[Decimal, Decimal]]) -> None:
        if not providers:
            raise ValueError("LLM_PROVIDERS: at least one provider is required")
        self.providers = list(providers)
        self.redis = client
        self.settings = settings
        self.prices = prices

    async def complete(self, request: LLMRequest) -> LLMResponse:
        errors: list[str] = []
        for index, provider in enumerate(self.providers):
            cooling_down, cached = await self._lookup(provider, request)
            if cooling_down:
                errors.append(f"{provider.name}: cooling down after repeated failures")
                continue
            if cached is not None:
                LLM_CACHE_HITS.labels(provider.name, provider.model).inc()
                return cached
            try:
                response = await self._call_with_retries(provider, request)
            except ProviderError as error:
                errors.append(str(error))
                await self._record_failure(provider)
                following = self.providers[index + 1:]
                if following:
                    LLM_FAILOVERS.labels(provider.name, following[0].name).inc()
                    log.warning("llm failover", provider=provider.name,
                                to=following[0].name, reason=error.reason)
                continue
            self._account(response)
            await self._succeeded(provider, request, response)
            return response
        raise AllProvidersFailed("; ".join(errors))

    def usage(self, response: LLMResponse) -> Usage:
        price_in, price_out = self.prices.get(f"{response.provider}:{response.model}",
                                              (Decimal(0), Decimal(0)))
        if response.cached:
            return Usage(0, 0, Decimal(0))
        cost = (price_in * response.prompt_tokens
                + price_out * response.completion_tokens) / Decimal(1_000_000)
        return Usage(response.prompt_tokens, response.completion_tokens, cost)

    async def aclose(self) -> None:
        for provider in self.providers:
            await provider.aclose()

    async def _call_with_retries(self, provider: Provider,
                                 request: LLMRequest) -> LLMResponse:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.llm_max_attempts),
            wait=_BackoffHonouringRetryAfter(self.settings.llm_backoff_max_seconds),
            retry=retry_if_exception(_retryable), reraise=True)
        async for attempt in retrying:
            with attempt:
                started = time.perf_counter()
                try:
                    with llm_span(provider.name, provider.model):
                        response = await provider.complete(request)
                except ProviderError as error:
                    LLM_CALLS.labels(provider.name, provider.model, "error").inc()
                    LLM_ERRORS.labels(provider.name, provider.model, error.reason).inc()
                    raise
                finally:
                    LLM_DURATION.labels(provider.name, provider.model).observe(
                        time.perf_counter() - started)
                LLM_CALLS.labels(provider.name, provider.model, "success").inc()
                return response
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _account(self, response: LLMResponse) -> None:
        usage = self.usage(response)
        labels = (response.provider, response.model)
        LLM_TOKENS.labels(*labels, "prompt").inc(usage.prompt_tokens)
        LLM_TOKENS.labels(*labels, "completion").inc(usage.completion_tokens)
        LLM_COST.labels(*labels).inc(float(usage.cost_usd))

    def _key(self, kind: str, provider: Provider, suffix: str = "") -> str:
        return f"llm:{kind}:{provider.name}:{provider.model}{suffix}"

    async def _lookup(self, provider: Provider,
                      request: LLMRequest) -> tuple[bool, LLMResponse | None]:
        """(is the provider cooling down, the cached response if any): one round trip."""
        keys = [self._key("cooldown", provider)]
        if self.settings.llm_cache_ttl_seconds > 0:
            keys.append(self._cache_key(provider, request))
        cooldown, *cached = await self.redis.mget(keys)
        if not cached or cached[0] is None:
            return cooldown is not None, None
        return cooldown is not None, LLMResponse(**{**json.loads(cached[0]), "cached": True})

    async def _record_failure(self, provider: Provider) -> None:
        key = self._key("failures", provider)
        failures = await self.redis.incr(key)
        await self.redis.expire(key, max(1, int(self.settings.llm_cooldown_seconds) * 2))
        if failures >= self.settings.llm_failure_threshold and \
                self.settings.llm_cooldown_seconds > 0:
            await self.redis.set(self._key("cooldown", provider), "1",
                                 ex=max(1, int(self.settings.llm_cooldown_seconds)))
            await self.redis.delete(key)
            log.warning("llm provider cooling down", provider=provider.name,
                        seconds=self.settings.llm_cooldown_seconds)

    def _cache_key(self, provider: Provider, request: LLMRequest) -> str:
        material = json.dumps([request.system, request.prompt, request.max_tokens,
                               request.temperature])
        return self._key("cache", provider, ":" + hashlib.sha256(material.encode()).hexdigest())

    async def _succeeded(self, provider: Provider, request: LLMRequest,
                         response: LLMResponse) -> None:
        """Resets the provider's failure count and caches the response: one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self._key("failures", provider))
            if self.settings.llm_cache_ttl_seconds > 0:
                pipe.set(self._cache_key(provider, request), json.dumps(asdict(response)),
                         ex=self.settings.llm_cache_ttl_seconds)
            await pipe.execute()


def build_providers(settings: Settings) -> list[Provider]:
    providers: list[Provider] = []
    for name in settings.llm_providers:
        if name == "offline":
            providers.append(OfflineProvider())
        elif name == "openai":
            key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
            providers.append(OpenAIProvider(key, settings.openai_model, settings.openai_base_url,
                                            settings.llm_timeout_seconds))
        elif name == "anthropic":
            key = (settings.anthropic_api_key.get_secret_value()
                   if settings.anthropic_api_key else "")
            providers.append(AnthropicProvider(key, settings.anthropic_model,
                                               settings.anthropic_base_url,
                                               settings.llm_timeout_seconds))
    return providers
