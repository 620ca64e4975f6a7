"""The one interface every LLM provider implements, and the errors they raise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Task = Literal["plan", "synthesize"]


@dataclass(frozen=True)
class Passage:
    """A numbered excerpt of a knowledge-base document the answer may cite."""

    number: int
    document_id: str
    title: str
    text: str


@dataclass(frozen=True)
class LLMRequest:
    """What the agent asks. Network providers get `system` + `prompt`; the offline provider
    works from the structured fields, which carry the same information."""

    task: Task
    system: str
    prompt: str
    question: str
    passages: tuple[Passage, ...] = field(default=())
    max_tokens: int = 800
    temperature: float = 0.2


@dataclass(frozen=True)
class LLMResponse:
    text: str
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cached: bool = False


class ProviderError(Exception):
    """A failed call. `retryable` errors are retried with backoff before failing over."""

    def __init__(self, provider: str, reason: str, message: str, *, retryable: bool,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{provider}: {reason}: {message}")
        self.provider = provider
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


class Provider(Protocol):
    name: str
    model: str

    async def complete(self, request: LLMRequest) -> LLMResponse: ...

    async def aclose(self) -> None: ...


def malformed(provider: str, error: Exception) -> ProviderError:
    """A response the SDK accepted whose shape is not the documented one; retrying won't help."""
    return ProviderError(provider, "malformed", f"unexpected response shape: {error}",
                         retryable=False)


def sdk_error(provider: str, error: Exception, sdk: Any) -> ProviderError:
    """Translates an exception of the official OpenAI or Anthropic SDK (both generated from
    the same template, with the same exception classes) into a ProviderError."""
    headers = getattr(getattr(error, "response", None), "headers", None) or {}
    retry_after = parse_retry_after(headers.get("retry-after"))
    if isinstance(error, sdk.RateLimitError):
        return ProviderError(provider, "rate_limited", str(error), retryable=True,
                             retry_after=retry_after)
    if isinstance(error, sdk.APITimeoutError):
        return ProviderError(provider, "timeout", str(error), retryable=True)
    if isinstance(error, sdk.APIConnectionError):
        return ProviderError(provider, "connection", str(error), retryable=True)
    if isinstance(error, sdk.APIStatusError):
        # 5xx (Anthropic's 529 "overloaded" included) and 408 are transient.
        status = error.status_code
        return ProviderError(provider, f"http_{status}", str(error),
                             retryable=status >= 500 or status == 408, retry_after=retry_after)
    return ProviderError(provider, "malformed", str(error), retryable=False)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form; HTTP dates are ignored)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
