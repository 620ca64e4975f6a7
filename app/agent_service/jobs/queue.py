"""The job queue: SAQ on Redis.

SAQ rather than a hand-written queue or arq: it is actively maintained, gives per-job timeouts,
retries with exponential backoff, heartbeats with a sweeper that re-queues jobs whose worker died
(SIGKILL, node loss), abort, and a shutdown grace period that lets in-flight jobs finish on
SIGTERM before handing them back.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import redis.exceptions
from redis.commands.core import AsyncScript
from saq import Job, Queue, Status
from saq.queue.redis import RedisQueue
from saq.utils import now

from agent_service.core.config import Settings
from agent_service.core.json_encoding import dumps
from agent_service.core.outage import Outage

TASK = "run_research"
# SAQ's enqueue script (saq/queue/redis.py, `_enqueue`), looped over a batch: a job whose id is
# already incomplete, or that is being aborted, is left alone, so enqueueing is idempotent.
# ARGV holds (job id, abort id, payload, scheduled) per job; a job scheduled at 0 is due now.
_ENQUEUE_MANY = """
for i = 1, #ARGV, 4 do
    local id, abort_id, payload, scheduled = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    if not redis.call('ZSCORE', KEYS[1], id) and redis.call('EXISTS', abort_id) == 0 then
        redis.call('SET', id, payload)
        redis.call('ZADD', KEYS[1], scheduled, id)
        if scheduled == '0' then redis.call('RPUSH', KEYS[2], id) end
    end
end
return 1
"""
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 10.0


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
    _enqueue_many_script: AsyncScript | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outage = Outage(__name__, "queue unreachable; backing off", "queue reachable again")
        """Failed dequeues in a row; they set the backoff."""

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:
        try:
            job = await super().dequeue(timeout, poll_interval)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                ConnectionError) as error:
            await self.wait(backoff_seconds(self.outage.failed(error)))
            return None
        self.outage.succeeded()
        return job

    async def enqueue_many(self, jobs: list[Job]) -> None:
        """`enqueue` for several jobs in one Redis round trip (the API's submission batches).

        SAQ has no batch enqueue, and a pipeline of its per-job script still costs a command
        (packed, sent and parsed) per job. This runs the same steps, with the same before-enqueue
        hooks and serialisation, for the whole batch in one script call: about half the client
        CPU per job. It relies on the key layout of the pinned saq release; the tests read and
        run jobs enqueued this way through SAQ's own code.
        """
        args: list[str | bytes | int] = []
        for job in jobs:
            job.queue = self
            job.queued = now()
            job.status = Status.QUEUED
            await self._before_enqueue(job)
            args += [job.id, job.abort_id, self.serialize(job), job.scheduled]
        if not args:
            return
        if self._enqueue_many_script is None:
            self._enqueue_many_script = self.redis.register_script(_ENQUEUE_MANY)
        # redis-py loads the script again by itself if Redis has lost it (restart, failover).
        await self._enqueue_many_script(keys=[self._incomplete, self._queued], args=args)


def make_queue(settings: Settings) -> ResilientRedisQueue:
    queue = ResilientRedisQueue.from_url(settings.redis_url.get_secret_value(),
                                         name=settings.queue_name,
                                         # SAQ's default is the json module; the payloads are
                                         # plain JSON either way.
                                         dump=dumps, load=orjson.loads)
    assert isinstance(queue, ResilientRedisQueue)  # SAQ's from_url is typed as the base class
    return queue


def run_job(settings: Settings, run_id: str, request_id: str | None, key: str | None = None,
            trace_context: dict[str, str] | None = None) -> Job:
    # The run id is the job key: enqueueing the same run twice is a no-op. Redeliveries of a
    # lost run use a key of their own (jobs/reaper.py).
    return Job(
        function=TASK, key=key or run_id,
        kwargs={"run_id": run_id, "request_id": request_id,
                "trace_context": trace_context or None},
        timeout=settings.job_timeout_seconds,
        heartbeat=settings.job_heartbeat_seconds,
        retries=settings.job_retries,
        # 1 s, 2 s, 4 s ... between attempts (SAQ doubles retry_delay when backoff is on).
        retry_delay=1.0, retry_backoff=True,
        ttl=3600)


async def enqueue_run(queue: Queue, settings: Settings, run_id: str,
                      request_id: str | None, key: str | None = None,
                      trace_context: dict[str, str] | None = None) -> None:
    await queue.enqueue(run_job(settings, run_id, request_id, key, trace_context))
