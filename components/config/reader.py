"""Typed reads of the stack config, collecting one message per bad key.

Values arrive as the strings the Pulumi CLI hands the program. Each is parsed by pydantic as the
type `keys.py` declares (JSON, strictly: `true`/`false`, whole numbers, lists of strings), and a
key that fails keeps its declared default so every other check still runs: the user gets every
problem of the stack at once, each naming the key, the value and what is allowed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml
from pydantic import TypeAdapter, ValidationError

from components.config.keys import KEYS_BY_NAME, SECRET_KEYS_BY_NAME, KeyType

NAMESPACE = "agent-platform"
T = TypeVar("T")

_PARSERS: dict[KeyType, tuple[TypeAdapter[Any], str]] = {
    "integer": (TypeAdapter(int), "a whole number"),
    "boolean": (TypeAdapter(bool), "true or false"),
    "array": (TypeAdapter(list[str]), "a list of strings"),
}


def stack_file_values(directory: Path, stack: str) -> dict[str, Any]:
    """What `Pulumi.<stack>.yaml` in `directory` sets in our namespace, keyed without it (values
    as YAML reads them; secrets still encrypted); empty when there is no such file."""
    path = directory / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        return {}
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    prefix = f"{NAMESPACE}:"
    return {key[len(prefix):]: value for key, value in config.items() if key.startswith(prefix)}


class ConfigError(ValueError):
    """The stack config is invalid; the message lists every bad key."""


class ConfigReader:
    """Reads declared keys from raw config strings; `errors` collects what was wrong."""

    def __init__(self, raw: dict[str, str]) -> None:
        self._raw = raw
        self.errors: list[str] = []
        self.present_secret_keys = frozenset(k for k in SECRET_KEYS_BY_NAME if raw.get(k))

    def fail(self, key: str, value: object, allowed: str) -> None:
        self.errors.append(f"{NAMESPACE}:{key} = {json.dumps(value)} is invalid: {allowed}")

    def _get(self, key: str) -> Any:
        spec = KEYS_BY_NAME[key]
        raw = self._raw.get(key)
        if raw is None or spec.type == "string":
            return spec.default if raw is None else str(raw)
        adapter, expected = _PARSERS[spec.type]
        text = str(raw).strip()
        try:
            # `pulumi config set k True` stores the word as typed; JSON spells it `true`.
            return adapter.validate_json(text.lower() if spec.type == "boolean" else text,
                                         strict=True)
        except ValidationError:
            self.fail(key, raw, f"expected {expected}")
            return spec.default

    def string(self, key: str) -> str:
        value = self.optional_string(key)
        if value is None:
            self.fail(key, None, "a value is required")
            return ""
        return value

    def optional_string(self, key: str) -> str | None:
        return cast(str, self._get(key)) or None

    def optional_matching(self, key: str, pattern: re.Pattern[str], shape: str) -> str | None:
        """An optional string that must match `pattern` when set; None when unset."""
        value = self.optional_string(key)
        if value and not pattern.match(value):
            self.fail(key, value, f"expected {shape}")
        return value

    def integer(self, key: str, low: int, high: int) -> int:
        value = cast(int, self._get(key))
        if not low <= value <= high:
            self.fail(key, value, f"must be between {low} and {high}")
        return value

    def number(self, key: str, low: float, high: float, example: str) -> float:
        """A decimal written as a string (Pulumi config has no float), within [low, high]."""
        raw = self.string(key)
        try:
            value = float(raw)
        except ValueError:
            self.fail(key, raw, f"expected a number such as {example}")
            return low
        if not low <= value <= high:
            self.fail(key, raw, f"must be between {low:g} and {high:g}")
        return value

    def boolean(self, key: str) -> bool:
        return cast(bool, self._get(key))

    def strings(self, key: str) -> tuple[str, ...]:
        return tuple(cast(list[str], self._get(key)))

    def choice(self, key: str, allowed: tuple[T, ...]) -> T:
        value = self.string(key)
        if value not in allowed:
            self.fail(key, value, "allowed values are " + ", ".join(map(str, allowed)))
            return allowed[0]
        return cast(T, value)

    def matching(self, key: str, pattern: re.Pattern[str], shape: str) -> str:
        value = self.string(key)
        if value and not pattern.match(value):
            self.fail(key, value, f"expected {shape}")
        return value
