"""The offline provider: deterministic, no network, no model.

It is not a language model. It plans by extracting the question's keywords and answers by
quoting, for each retrieved passage, the sentence that shares most words with the question, each
with its citation. The `local` stack and the tests use it so that everything runs without keys;
token counts are whitespace-separated words, and its price is zero.
"""

from __future__ import annotations

from agent_service.agent.text import best_sentence, keywords
from agent_service.llm.base import LLMRequest, LLMResponse

MODEL = "offline-extractive-v1"
class OfflineProvider:
    name = "offline"

    def __init__(self) -> None:
        self.model = MODEL

    async def complete(self, request: LLMRequest) -> LLMResponse:
        terms = keywords(request.question)
        if request.task == "plan":
            queries = [" ".join(terms)] if terms else [request.question]
            queries += [" ".join(terms[i:i + 3]) for i in range(0, len(terms), 3)][:2]
            text = "\n".join(dict.fromkeys(q for q in queries if q))
        elif not request.passages:
            text = "The knowledge base has no document that matches this question."
        else:
            quoted = [f"{best_sentence(p.text, set(terms))} [{p.number}]"
                      for p in request.passages]
            text = "From the knowledge base: " + " ".join(q for q in quoted if q.strip())
        return LLMResponse(text=text, provider=self.name, model=self.model,
                           prompt_tokens=len(request.prompt.split()),
                           completion_tokens=len(text.split()))

    async def aclose(self) -> None:
        return None
