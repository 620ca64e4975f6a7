"""The README is the front door and the docs/ pages hold the rest: every link between them lands."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from harness import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


@functools.cache
def anchors(page: Path) -> frozenset[str]:
    """GitHub's heading anchors: lower-case, punctuation dropped, spaces as dashes."""
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    headings = re.findall(r"^#+\s+(.*)$", text, re.MULTILINE)
    return frozenset(re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                     for h in headings)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    broken = []
    for target in _LINK.findall(_FENCE.sub("", page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z]+:", target):
            continue  # an external URL
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(target)
    assert broken == []


def test_the_readme_is_a_front_door() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 250
    # The three ways in, in the order a newcomer needs them, and every docs page linked.
    starts = [readme.index(h) for h in ("### 1. Try the service", "### 2. Deploy to a local",
                                        "### 3. Deploy dev or prod")]
    assert starts == sorted(starts)
    for page in (ROOT / "docs").glob("*.md"):
        assert f"(docs/{page.name})" in readme, page.name
