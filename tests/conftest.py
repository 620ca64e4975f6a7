"""Shared fixtures: every stack rendered once per test session through the mocks harness."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from harness import STACKS, Rendered, render


@pytest.fixture(scope="session")
def stacks() -> dict[str, Rendered]:
    """The resources of every stack, as `pulumi up` would register them with its config file."""
    return {stack: render(stack) for stack in STACKS}


@pytest.fixture(scope="session")
def aws_stacks(stacks: dict[str, Rendered]) -> list[Rendered]:
    return [stacks["dev"], stacks["prod"]]


@pytest.fixture
def render_with() -> Callable[..., Rendered]:
    """Renders a stack with some config keys overridden (None removes a key) and, as
    `pulumi config set --secret` would, some secret keys set."""

    def _render(stack: str, overrides: Mapping[str, Any],
                secrets: Mapping[str, str] | None = None) -> Rendered:
        return render(stack, overrides, secrets)

    return _render
