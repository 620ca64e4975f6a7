"""The Redis client every process uses (queue, rate limits, live events, LLM cache)."""

from __future__ import annotations

import redis.asyncio as redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

# A pooled connection idle this long is pinged before use: one that a Redis restart or
# failover broke is replaced then, not discovered by a failing request minutes later.
HEALTH_CHECK_SECONDS = 5
# Longer than any blocking command the service sends (SAQ's dequeue waits 1 s), shorter than
# a client would wait on a Redis that silently drops packets.
SOCKET_TIMEOUT_SECONDS = 10


# A command waits this long for a free pooled connection before it fails (as an outage).
POOL_TIMEOUT_SECONDS = 5


def make_redis(url: str, max_connections: int = 100) -> redis.Redis:
    """A client whose pool holds at most `max_connections`; a command that finds them all busy
    waits for one (redis-py's default pool would fail it at once)."""
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=POOL_TIMEOUT_SECONDS,
        health_check_interval=HEALTH_CHECK_SECONDS,
        socket_connect_timeout=5, socket_timeout=SOCKET_TIMEOUT_SECONDS,
        # A command whose connection broke is sent again on a fresh one, briefly: long
        # outages are the caller's to handle (503 in the API, waiting in a worker).
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=2),
        retry_on_error=[ConnectionError, TimeoutError])
    # from_pool: the client owns the pool, so closing the client closes its connections.
    return redis.Redis.from_pool(pool)
