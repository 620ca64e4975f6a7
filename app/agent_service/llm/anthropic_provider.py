"""Anthropic's Messages API through the official SDK."""

from __future__ import annotations

import anthropic

from agent_service.llm.base import LLMRequest, LLMResponse, malformed, sdk_error


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, api_key: str, model: str, base_url: str | None, timeout: float) -> None:
        self.model = model
        self._client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url,
                                                timeout=timeout, max_retries=0,
                                                http_client=anthropic.DefaultAioHttpClient())

    async def complete(self, request: LLMRequest) -> LLMResponse:
        try:
            response = await self._client.messages.create(
                # Current models fix their own sampling; the SDK no longer takes temperature.
                model=self.model, max_tokens=request.max_tokens, system=request.system,
                messages=[{"role": "user", "content": request.prompt}])
        except (anthropic.APIError, ValueError) as error:
            raise sdk_error(self.name, error, anthropic) from error
        try:
            return LLMResponse(
                text="".join(block.text for block in response.content if block.type == "text"),
                provider=self.name, model=self.model,
                prompt_tokens=response.usage.input_tokens,
                completion_tokens=response.usage.output_tokens)
        except (AttributeError, TypeError) as error:
            raise malformed(self.name, error) from error

    async def aclose(self) -> None:
        await self._client.close()
