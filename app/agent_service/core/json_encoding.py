"""JSON encoding for payloads the service stores (job payloads, jsonb columns): orjson, with
non-string keys written as strings, as the json module it replaced wrote them."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def dumps_text(value: Any) -> str:
    return dumps(value).decode()
