"""LLM providers over the real wire formats, and the router's retries, failover, cool-down,
cache and accounting, against a local scripted server and a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest
import redis.asyncio as redis
from llm_server import Behaviour, FakeLLM, fake_llm
from prometheus_client import REGISTRY
from support import make_settings
from tenacity import RetryCallState

from agent_service.core.config import Settings
from agent_service.llm.anthropic_provider import AnthropicProvider
from agent_service.llm.base import LLMRequest, Passage, ProviderError
from agent_service.llm.offline import OfflineProvider
from agent_service.llm.openai_provider import OpenAIProvider
from agent_service.llm.router import AllProvidersFailed, LLMRouter, _BackoffHonouringRetryAfter

pytestmark = pytest.mark.anyio
ANSWER = LLMRequest(task="synthesize", system="Answer with citations.", prompt="Q?",
                    question="How do rolling updates work?")


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with fake_llm() as server:
        yield server


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[redis.Redis]:
    connection = redis.from_url(settings.redis_url.get_secret_value())
    yield connection
    await connection.aclose()


# The providers a test made, closed after it: each owns an aiohttp session.
OPENED: list[OpenAIProvider | AnthropicProvider] = []


@pytest.fixture(autouse=True)
async def close_providers() -> AsyncIterator[None]:
    yield
    while OPENED:
        await OPENED.pop().aclose()


def openai(llm: FakeLLM, timeout: float = 5) -> OpenAIProvider:
    provider = OpenAIProvider("sk-test", "gpt-4o-mini", f"{llm.base_url}/v1", timeout)
    OPENED.append(provider)
    return provider


def anthropic(llm: FakeLLM, timeout: float = 5) -> AnthropicProvider:
    provider = AnthropicProvider("sk-ant-test", "claude-haiku-4-5", llm.base_url, timeout)
    OPENED.append(provider)
    return provider


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def router(providers: list, client: redis.Redis, servers: dict[str, str],  # type: ignore[type-arg]
           **overrides: object) -> LLMRouter:
    settings = make_settings(servers, llm_backoff_max_seconds=0.05, **overrides)
    return LLMRouter(providers, client, settings, settings.prices())


async def test_openai_success_reports_usage(llm: FakeLLM) -> None:
    response = await openai(llm).complete(ANSWER)
    assert response.text == "Rolling updates replace pods gradually [1]."
    assert (response.provider, response.model) == ("openai", "gpt-4o-mini")
    assert (response.prompt_tokens, response.completion_tokens) == (11, 7)
    sent = llm.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"]["messages"][0] == {"role": "system", "content": "Answer with citations."}


async def test_anthropic_success_reports_usage(llm: FakeLLM) -> None:
    response = await anthropic(llm).complete(ANSWER)
    assert response.text == "Rolling updates replace pods gradually [1]."
    assert (response.prompt_tokens, response.completion_tokens) == (11, 7)
    assert llm.requests[0]["path"] == "/v1/messages"
    assert llm.requests[0]["body"]["system"] == "Answer with citations."


@pytest.mark.parametrize("make", [openai, anthropic])
async def test_429_is_retryable_with_retry_after(llm: FakeLLM, make: object) -> None:
    llm.script = [Behaviour(status=429, headers={"retry-after": "7"})]
    with pytest.raises(ProviderError) as caught:
        await make(llm).complete(ANSWER)  # type: ignore[operator]
    assert caught.value.reason == "rate_limited"
    assert caught.value.retryable and caught.value.retry_after == 7.0


@pytest.mark.parametrize("make", [openai, anthropic])
async def test_500_is_retryable(llm: FakeLLM, make: object) -> None:
    llm.script = [Behaviour(status=500)]
    with pytest.raises(ProviderError) as caught:
        await make(llm).complete(ANSWER)  # type: ignore[operator]
    assert caught.value.reason == "http_500" and caught.value.retryable


@pytest.mark.parametrize("make", [openai, anthropic])
async def test_timeout_is_retryable(llm: FakeLLM, make: object) -> None:
    llm.script = [Behaviour(delay=2.0)]
    with pytest.raises(ProviderError) as caught:
        await make(llm, timeout=0.3).complete(ANSWER)  # type: ignore[operator]
    assert caught.value.reason == "timeout" and caught.value.retryable


@pytest.mark.parametrize("make", [openai, anthropic])
async def test_malformed_body_is_not_retried(llm: FakeLLM, make: object) -> None:
    llm.script = [Behaviour(malformed=True)]
    with pytest.raises(ProviderError) as caught:
        await make(llm).complete(ANSWER)  # type: ignore[operator]
    assert caught.value.reason == "malformed" and not caught.value.retryable


async def test_backoff_never_undercuts_retry_after() -> None:
    wait = _BackoffHonouringRetryAfter(maximum=30)
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = 1
    state.set_exception((ProviderError, ProviderError("openai", "rate_limited", "x",
                                                      retryable=True, retry_after=12), None))
    assert all(12 <= wait(state) <= 30 for _ in range(20))
    capped = _BackoffHonouringRetryAfter(maximum=5)
    assert capped(state) <= 5


async def test_router_retries_then_succeeds(llm: FakeLLM, client: redis.Redis,
                                            servers: dict[str, str]) -> None:
    llm.script = [Behaviour(status=429, headers={"retry-after": "0"}), Behaviour(status=503)]
    before = metric("llm_errors_total", provider="openai", model="gpt-4o-mini",
                    reason="rate_limited")
    response = await router([openai(llm)], client, servers).complete(ANSWER)
    assert response.text.endswith("[1].")
    assert llm.count("/chat/completions") == 3
    assert metric("llm_errors_total", provider="openai", model="gpt-4o-mini",
                  reason="rate_limited") == before + 1


async def test_router_fails_over_to_the_secondary(llm: FakeLLM, client: redis.Redis,
                                                  servers: dict[str, str]) -> None:
    llm.script = [Behaviour(status=500)] * 3
    before = metric("llm_failovers_total", from_provider="openai", to_provider="anthropic")
    response = await router([openai(llm), anthropic(llm)], client, servers).complete(ANSWER)
    assert response.provider == "anthropic"
    assert llm.count("/chat/completions") == 3 and llm.count("/messages") == 1
    assert metric("llm_failovers_total", from_provider="openai",
                  to_provider="anthropic") == before + 1


async def test_malformed_primary_fails_over_without_retrying(
        llm: FakeLLM, client: redis.Redis, servers: dict[str, str]) -> None:
    llm.script = [Behaviour(malformed=True)]
    response = await router([openai(llm), OfflineProvider()], client, servers).complete(
        LLMRequest(task="synthesize", system="s", prompt="p", question="rolling updates",
                   passages=(Passage(1, "d1", "Doc", "Rolling updates are gradual."),)))
    assert response.provider == "offline"
    assert llm.count("/chat/completions") == 1


async def test_repeated_failures_cool_the_provider_down(llm: FakeLLM, client: redis.Redis,
                                                        servers: dict[str, str]) -> None:
    chain = router([openai(llm), OfflineProvider()], client, servers,
                   llm_failure_threshold=2, llm_cooldown_seconds=60, llm_max_attempts=1,
                   llm_cache_ttl_seconds=0)
    llm.script = [Behaviour(status=500), Behaviour(status=500)]
    for _ in range(2):
        assert (await chain.complete(ANSWER)).provider == "offline"
    calls = llm.count("/chat/completions")
    assert (await chain.complete(ANSWER)).provider == "offline"
    assert llm.count("/chat/completions") == calls, "a cooling provider is skipped"


async def test_every_provider_failing_raises(llm: FakeLLM, client: redis.Redis,
                                             servers: dict[str, str]) -> None:
    llm.script = [Behaviour(status=400)] * 2
    with pytest.raises(AllProvidersFailed, match="openai: http_400"):
        await router([openai(llm), anthropic(llm)], client, servers).complete(ANSWER)


async def test_identical_requests_hit_the_cache(llm: FakeLLM, client: redis.Redis,
                                                servers: dict[str, str]) -> None:
    chain = router([openai(llm)], client, servers)
    hits = metric("llm_cache_hits_total", provider="openai", model="gpt-4o-mini")
    first = await chain.complete(ANSWER)
    second = await chain.complete(ANSWER)
    assert llm.count("/chat/completions") == 1
    assert second.text == first.text and second.cached and not first.cached
    assert chain.usage(second).cost_usd == 0, "a cached answer costs nothing"
    assert metric("llm_cache_hits_total", provider="openai", model="gpt-4o-mini") == hits + 1
    ttl = [await client.ttl(k) async for k in client.scan_iter("llm:cache:openai:*")]
    assert ttl and 0 < ttl[0] <= 3600


async def test_tokens_and_cost_come_from_usage_and_the_price_table(
        llm: FakeLLM, client: redis.Redis, servers: dict[str, str]) -> None:
    llm.script = [Behaviour(prompt_tokens=1_000_000, completion_tokens=500_000)]
    chain = router([openai(llm)], client, servers)
    cost_before = metric("agent_cost_usd_total", provider="openai", model="gpt-4o-mini")
    response = await chain.complete(ANSWER)
    usage = chain.usage(response)
    # gpt-4o-mini: $0.15 per million input tokens, $0.60 per million output tokens.
    assert usage.cost_usd == Decimal("0.15") + Decimal("0.30")
    assert metric("agent_cost_usd_total", provider="openai",
                  model="gpt-4o-mini") == pytest.approx(cost_before + 0.45)
    assert metric("llm_tokens_total", provider="openai", model="gpt-4o-mini",
                  type="prompt") >= 1_000_000


async def test_offline_provider_is_deterministic_and_cites() -> None:
    request = LLMRequest(task="synthesize", system="s", prompt="p",
                         question="How does a rolling update keep capacity?",
                         passages=(Passage(1, "a", "Rolling", "Intro. A rolling update keeps "
                                           "capacity with maxUnavailable 0. Other."),
                                   Passage(2, "b", "Probes", "Readiness probes gate traffic.")))
    first = await OfflineProvider().complete(request)
    assert first == await OfflineProvider().complete(request)
    assert "A rolling update keeps capacity with maxUnavailable 0. [1]" in first.text
    assert "[2]" in first.text
