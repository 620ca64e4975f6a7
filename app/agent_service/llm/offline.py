"""The offline provider: deterministic, no network, no model.

It is not a language model. It plans by extracting the question's keywords and answers by
quoting, for each retrieved passage, the sentence that shares most words with the question, each
with its citation. The `local` stack and the tests use it so that everything runs without keys;
token counts are whitespace-separated words, and its price is zero.
"""

from __future__ import annotations

import re

from agent_service.llm.base import LLMRequest, LLMResponse

MODEL = "offline-extractive-v1"
STOPWORDS = frozenset("""a an and are as at be by can do does for from has have how i in is it its
of on or should that the their there these this to was what when where which who why will with
you your about into than then them they we our not no yes""".split())
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9+#.-]*[A-Za-z0-9+#]|[A-Za-z0-9]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def keywords(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word not in STOPWORDS and len(word) > 1:
            seen.setdefault(word, None)
    return list(seen)


def best_sentence(text: str, terms: set[str]) -> str:
    sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
    if not sentences:
        return ""
    return max(sentences, key=lambda s: (len(terms & set(keywords(s))), -sentences.index(s)))


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
