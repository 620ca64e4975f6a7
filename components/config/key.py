"""One stack config key: its name, type, production default and meaning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

KeyType = Literal["string", "integer", "boolean", "array"]


@dataclass(frozen=True)
class Key:
    """One config key in the `agent-platform:` namespace."""

    name: str
    type: KeyType
    description: str
    default: str | int | bool | list[str]
