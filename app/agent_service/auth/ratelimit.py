"""Per-key rate limiting in Redis (the `limits` library, sliding-window counter), shared by all
API processes."""

from __future__ import annotations

import math
import time

import redis.asyncio as redis
from limits import parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter


def limits_uri(redis_url: str) -> str:
    return f"async+{redis_url}"


class RateLimiter:
    def __init__(self, client: redis.Redis, redis_url: str, rate: str) -> None:
        self.item = parse(rate)
        # Shares the app's connection pool (and its health checks), so closing the app's
        # client closes these too.
        self.storage = RedisStorage(limits_uri(redis_url), implementation="redispy",
                                    key_prefix="agent-ratelimit",
                                    # limits types its options as scalars but hands them
                                    # to redis.asyncio.Redis unchanged.
                                    connection_pool=client.connection_pool,  # type: ignore[arg-type]
                                    )
        self.strategy = SlidingWindowCounterRateLimiter(self.storage)

    async def check(self, key: str) -> float | None:
        """Counts one request; None when allowed, otherwise the seconds to wait."""
        if await self.strategy.hit(self.item, key):
            return None
        stats = await self.strategy.get_window_stats(self.item, key)
        return max(1.0, math.ceil(stats.reset_time - time.time()))
