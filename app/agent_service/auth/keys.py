"""API keys: random 256-bit secrets shown once, stored as SHA-256 hashes, revocable; each
belongs to a tenant and carries scopes."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cachetools import TTLCache
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from agent_service.db.models import DEFAULT_SCOPES, DEFAULT_TENANT, SCOPES, ApiKey

KEY_PREFIX = "ak_"
_FIND = select(ApiKey.id, ApiKey.name, ApiKey.prefix, ApiKey.tenant, ApiKey.scopes).where(
    ApiKey.key_hash == bindparam("digest"), ApiKey.revoked_at.is_(None))


@dataclass(frozen=True)
class Principal:
    """Who a request acts for."""

    id: uuid.UUID
    name: str
    prefix: str
    tenant: str
    scopes: frozenset[str]
    key_id: str = field(init=False)
    """The id as text (rate-limit buckets, logs), formatted once rather than per request."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_id", str(self.id))

    def may(self, scope: str) -> bool:
        """Whether the key holds `scope`; an admin key holds every scope."""
        return scope in self.scopes or "admin" in self.scopes


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> tuple[str, str]:
    """(the key to hand out once, its public prefix)."""
    prefix = secrets.token_hex(4)
    return f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}", prefix


def check_scopes(scopes: Sequence[str]) -> list[str]:
    """The scopes, deduplicated in order; a ValueError names an unknown one."""
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; allowed: {', '.join(SCOPES)}")
    return list(dict.fromkeys(scopes))


async def create_key(session: AsyncSession, name: str, tenant: str = DEFAULT_TENANT,
                     scopes: Sequence[str] = DEFAULT_SCOPES) -> tuple[str, ApiKey]:
    key, prefix = generate_key()
    row = ApiKey(name=name, prefix=prefix, key_hash=hash_key(key), tenant=tenant,
                 scopes=check_scopes(scopes))
    session.add(row)
    await session.commit()
    return key, row


# A whole key (`ak_<prefix>_<secret>`), `ak_<prefix>`, or the bare prefix.
_KEY_OR_PREFIX = re.compile(rf"^(?:{KEY_PREFIX})?(?P<prefix>[0-9a-f]{{8}})(?P<secret>_.+)?$")


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    """Every key, newest first; the hashes stay in the database."""
    return list((await session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc()))).all())


@dataclass(frozen=True)
class Revocation:
    prefix: str
    revoked: bool
    reason: str | None = None
    """Why nothing was revoked."""


async def revoke_key(session: AsyncSession, key_or_prefix: str) -> Revocation:
    """Revokes the key given whole or by prefix. A whole key must match its stored hash, so a
    mistyped key cannot revoke another one that happens to share the prefix."""
    given = key_or_prefix.strip()
    match = _KEY_OR_PREFIX.match(given)
    if match is None:
        return Revocation(given[:12], False, "expected a key (ak_<8 hex>_<secret>) or its "
                                             "prefix (ak_<8 hex> or <8 hex>)")
    prefix = match["prefix"]
    row = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None:
        return Revocation(prefix, False, f"no key has the prefix {prefix}")
    # Anything past the prefix makes it a whole key, which must be the one stored.
    if match["secret"] and row.key_hash != hash_key(given):
        return Revocation(prefix, False, f"that is not the key with the prefix {prefix}")
    if row.revoked_at is not None:
        return Revocation(prefix, False, f"already revoked at {row.revoked_at.isoformat()}")
    await session.execute(update(ApiKey).where(ApiKey.id == row.id, ApiKey.revoked_at.is_(None))
                          .values(revoked_at=datetime.now(UTC)))
    await session.commit()
    return Revocation(prefix, True)


class KeyCache:
    """Caches look-ups briefly so every request does not hit Postgres.

    A revoked key keeps working for at most `ttl` seconds in a process that had cached it.
    Refusals are cached too: a client retrying with a wrong or revoked key (an old secret left
    in a deployment) would otherwise cost a query per request. A refused key cannot become
    valid later, since keys are random and revocation is final, so caching refusals hides
    nothing. Bounded, least recently used first, so a flood of made-up keys cannot grow the
    process.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, ttl: float) -> None:
        self._entries: TTLCache[str, Principal | None] | None = (
            TTLCache(self.MAX_ENTRIES, ttl) if ttl > 0 else None)

    async def authenticate(self, engine: AsyncEngine, key: str) -> Principal | None:
        digest = hash_key(key)
        if self._entries is not None and digest in self._entries:
            return self._entries[digest]
        async with engine.connect() as db:  # only on a miss
            row = (await db.execute(_FIND, {"digest": digest})).first()
        principal = None if row is None else Principal(
            row.id, row.name, row.prefix, row.tenant, frozenset(row.scopes))
        if self._entries is not None:
            self._entries[digest] = principal
        return principal
