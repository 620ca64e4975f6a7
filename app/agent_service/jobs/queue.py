"""The job queue: SAQ on Redis.

SAQ rather than a hand-written queue or arq: it is actively maintained, gives per-job timeouts,
retries with exponential backoff, heartbeats with a sweeper that re-queues jobs whose worker died
(SIGKILL, node loss), abort, and a shutdown grace period that lets in-flight jobs finish on
SIGTERM before handing them back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from saq import Job, Queue
from saq.queue.redis import RedisQueue

from agent_service.core.config import Settings
from agent_service.core.json_encoding import dumps
from agent_service.core.outage import Outage, is_outage
from agent_service.core.redis_client import make_redis

TASK = "run_research"
# Connections beyond one per job slot: SAQ's upkeep, heartbeats, the relay's enqueues.
QUEUE_SPARE_CONNECTIONS = 20
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 10.0
# A heartbeat Redis refused is tried again this soon, not a beat later: the beat must land as
# soon as Redis is back, or an outage of a third of the heartbeat period would let it lapse.
HEARTBEAT_RETRY_SECONDS = 1.0


def backoff_seconds(failures: int) -> float:
    """0.5 s after the first failure, doubling, at most 10 s."""
    exponent: int = max(0, failures - 1)
    return min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * float(2 ** exponent))


class ResilientRedisQueue(RedisQueue):
    """SAQ's Redis queue, except that a lost Redis does not turn a worker into a busy loop.

    SAQ starts the next dequeue the moment one fails, so without Redis every worker would spin
    at full CPU (and the CPU autoscaler would add more of them). A failed dequeue here waits with
    a capped exponential backoff and reports no job; the first failure and the recovery are
    logged once each.
    """

    wait = staticmethod(asyncio.sleep)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outage = Outage(__name__, "queue unreachable; backing off", "queue reachable again")
        """Failed dequeues in a row; they set the backoff."""

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:
        try:
            job = await super().dequeue(timeout, poll_interval)
        except Exception as error:
            if not is_outage(error):  # the one definition of an outage (core/outage.py)
                raise
            await self.wait(backoff_seconds(self.outage.failed(error)))
            return None
        self.outage.succeeded()
        return job


async def keep_alive(job: Job, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
                     ) -> None:
    """Touches the job a few times per heartbeat period for as long as it runs, waits for
    Postgres included: SAQ's sweeper re-queues a job whose heartbeat lapses, which must mean its
    worker died, not that the run is waiting out an outage. (A hung run ends at the job's
    timeout.) Cancelled when the job ends."""
    while job.heartbeat > 0:  # 0: the job asked for no heartbeat
        await sleep(job.heartbeat / 3)
        while True:
            try:
                await job.update()
                break
            except Exception as error:
                if not is_outage(error):
                    raise
                await sleep(HEARTBEAT_RETRY_SECONDS)  # Redis is away: soon again


def make_queue(settings: Settings) -> ResilientRedisQueue:
    # Each of a worker's job slots waits for its next job in a blocking command on a
    # connection of its own. SAQ's default encoder is the json module; the payloads are plain
    # JSON either way.
    client = make_redis(settings.redis_url.get_secret_value(),
                        max_connections=settings.worker_concurrency + QUEUE_SPARE_CONNECTIONS)
    return ResilientRedisQueue(client, name=settings.queue_name, dump=dumps, load=orjson.loads)


def run_job(settings: Settings, run_id: str, request_id: str | None, key: str | None = None,
            trace_context: dict[str, str] | None = None) -> Job:
    # The run id is the job key: enqueueing the same run twice is a no-op. Redeliveries of a
    # lost run use a key of their own (jobs/reaper.py).
    return Job(
        function=TASK, key=key or run_id,
        kwargs={"run_id": run_id, "request_id": request_id,
                "trace_context": trace_context or None},
        # The run's own limit plus the time a worker may wait out an outage of Postgres or
        # Redis (jobs/worker.py), so waiting for a database never counts as the run timing out.
        timeout=int(settings.job_timeout_seconds + settings.outage_tolerance_seconds),
        heartbeat=settings.job_heartbeat_seconds,
        retries=settings.job_retries,
        # 1 s, 2 s, 4 s ... between attempts (SAQ doubles retry_delay when backoff is on).
        retry_delay=1.0, retry_backoff=True,
        ttl=3600)


async def enqueue_run(queue: Queue, settings: Settings, run_id: str,
                      request_id: str | None, key: str | None = None,
                      trace_context: dict[str, str] | None = None) -> None:
    await queue.enqueue(run_job(settings, run_id, request_id, key, trace_context))
