"""Keyset pagination cursors over (created_at, id), newest first."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime

from fastapi import HTTPException


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(created_at), uuid.UUID(row_id)
    except (ValueError, TypeError) as error:
        raise HTTPException(400, f"cursor {cursor[:80]!r} is invalid: pass the next_cursor "
                                 "value of a previous page unchanged") from error
