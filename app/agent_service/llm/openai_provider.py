"""OpenAI and OpenAI-compatible endpoints (vLLM, Ollama, LiteLLM) through the official SDK."""

from __future__ import annotations

import openai

from agent_service.llm.base import LLMRequest, LLMResponse, malformed, sdk_error


class OpenAIProvider:
    name = "openai"

    def __init__(self, api_key: str, model: str, base_url: str | None, timeout: float) -> None:
        self.model = model
        # Retries are ours (with failover and metrics), so the SDK must not retry as well.
        # aiohttp: the SDK's documented transport for many concurrent calls (docs/service.md).
        self._client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout,
                                          max_retries=0, http_client=openai.DefaultAioHttpClient())

    async def complete(self, request: LLMRequest) -> LLMResponse:
        try:
            response = await self._client.chat.completions.create(
                model=self.model, max_tokens=request.max_tokens,
                temperature=request.temperature,
                messages=[{"role": "system", "content": request.system},
                          {"role": "user", "content": request.prompt}])
        except (openai.APIError, ValueError) as error:
            raise sdk_error(self.name, error, openai) from error
        try:
            usage = response.usage
            return LLMResponse(
                text=response.choices[0].message.content or "", provider=self.name,
                model=self.model, prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0)
        except (AttributeError, IndexError, TypeError) as error:
            raise malformed(self.name, error) from error

    async def aclose(self) -> None:
        await self._client.close()
