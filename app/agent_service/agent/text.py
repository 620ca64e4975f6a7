"""Words and sentences of plain text: what the agent searches by and quotes from.

The planner, the document search and the offline provider all read text the same way.
"""

from __future__ import annotations

import re

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
