"""The research agent: plan -> search -> read -> synthesise, bounded by iterations, tokens and
wall-clock time, every step recorded as a run event."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from agent_service.agent.search import Hit
from agent_service.agent.text import best_sentence, keywords
from agent_service.llm.base import LLMRequest, Passage
from agent_service.llm.router import LLMRouter

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]
CancelCheck = Callable[[], Awaitable[bool]]
Search = Callable[[str, int], Awaitable[list[Hit]]]
"""(query, limit) -> the best hits in the documents this run may read (agent/search.py)."""

PLAN_SYSTEM = ("You plan research. Reply with up to three short search queries for a keyword "
               "search engine, one per line, and nothing else.")
ANSWER_SYSTEM = ("You answer questions using only the numbered passages given. Cite every "
                 "claim with its passage number in brackets, like [1]. If the passages do not "
                 "answer the question, say so.")
PASSAGE_CHARS = 1200


class BudgetExceeded(Exception):
    """The run used up its iteration, token or time budget."""


class RunCancelled(Exception):
    """The run was cancelled while it was running."""


@dataclass(frozen=True)
class Budget:
    max_iterations: int
    max_tokens: int
    wall_clock_seconds: float


@dataclass
class AgentResult:
    answer: str
    sources: list[dict[str, Any]]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    steps: list[str] = field(default_factory=list)


class ResearchAgent:
    def __init__(self, router: LLMRouter, budget: Budget) -> None:
        self.router = router
        self.budget = budget

    async def run(self, question: str, max_sources: int, emit: Emit, cancelled: CancelCheck,
                  search: Search) -> AgentResult:
        deadline = time.monotonic() + self.budget.wall_clock_seconds
        result = AgentResult(answer="", sources=[])

        async def step(name: str) -> None:
            if await cancelled():
                raise RunCancelled("the run was cancelled")
            if time.monotonic() > deadline:
                raise BudgetExceeded(f"wall-clock budget of {self.budget.wall_clock_seconds:g}s "
                                     f"exceeded before {name}")
            used = result.prompt_tokens + result.completion_tokens
            if used > self.budget.max_tokens:
                raise BudgetExceeded(f"token budget of {self.budget.max_tokens} exceeded "
                                     f"({used} used) before {name}")
            result.steps.append(name)

        async def ask(request: LLMRequest) -> str:
            response = await self.router.complete(request)
            usage = self.router.usage(response)
            result.prompt_tokens += usage.prompt_tokens
            result.completion_tokens += usage.completion_tokens
            result.cost_usd += usage.cost_usd
            return response.text

        await step("plan")
        plan = await ask(LLMRequest(task="plan", system=PLAN_SYSTEM, prompt=question,
                                    question=question, max_tokens=200))
        queries = [q.strip(" -*0123456789.") for q in plan.splitlines() if q.strip()]
        queries = [q for q in queries if q][: self.budget.max_iterations] or [question]
        await emit("plan", {"queries": queries})

        hits: dict[str, Hit] = {}
        for iteration, query in enumerate(queries, start=1):
            await step(f"search {iteration}")
            found = await search(query, max_sources)
            new = [h for h in found if h.document_id not in hits]
            for hit in new[: max_sources - len(hits)]:
                hits[hit.document_id] = hit
            await emit("search", {"iteration": iteration, "query": query, "hits": len(found),
                                  "new_sources": len(new)})
            if len(hits) >= max_sources:
                break

        await step("read")
        terms = set(keywords(question))
        passages = []
        for number, hit in enumerate(hits.values(), start=1):
            excerpt = _excerpt(hit.content, terms)
            passages.append(Passage(number, hit.document_id, hit.title, excerpt))
            result.sources.append({"number": number, "document_id": hit.document_id,
                                   "title": hit.title, "source": hit.source})
            await emit("read", {"number": number, "document_id": hit.document_id,
                                "title": hit.title})

        await step("synthesize")
        prompt = f"Question: {question}\n\n" + "\n\n".join(
            f"[{p.number}] {p.title}\n{p.text}" for p in passages)
        result.answer = await ask(LLMRequest(task="synthesize", system=ANSWER_SYSTEM,
                                             prompt=prompt, question=question,
                                             passages=tuple(passages)))
        await emit("answer", {"sources": len(passages), "tokens": result.prompt_tokens +
                              result.completion_tokens})
        return result


def _excerpt(content: str, terms: set[str]) -> str:
    """The passage around the most relevant sentence, bounded for the prompt."""
    sentence = best_sentence(content, terms)
    start = max(0, content.find(sentence) - PASSAGE_CHARS // 3) if sentence else 0
    return content[start:start + PASSAGE_CHARS]
