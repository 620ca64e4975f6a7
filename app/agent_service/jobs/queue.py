"""The job queue: SAQ on Redis.

SAQ rather than a hand-written queue or arq: it is actively maintained, gives per-job timeouts,
retries with exponential backoff, heartbeats with a sweeper that re-queues jobs whose worker died
(SIGKILL, node loss), abort, and a shutdown grace period that lets in-flight jobs finish on
SIGTERM before handing them back.
"""

from __future__ import annotations

from saq import Queue

from agent_service.core.config import Settings

TASK = "run_research"


def make_queue(settings: Settings) -> Queue:
    return Queue.from_url(settings.redis_url.get_secret_value(), name=settings.queue_name)


async def enqueue_run(queue: Queue, settings: Settings, run_id: str,
                      request_id: str | None, key: str | None = None,
                      trace_context: dict[str, str] | None = None) -> None:
    # The run id is the job key: enqueueing the same run twice is a no-op. Redeliveries of a
    # lost run use a key of their own (jobs/reaper.py).
    await queue.enqueue(
        TASK, key=key or run_id, run_id=run_id, request_id=request_id,
        trace_context=trace_context or None,
        timeout=settings.job_timeout_seconds,
        heartbeat=settings.job_heartbeat_seconds,
        retries=settings.job_retries,
        # 1 s, 2 s, 4 s ... between attempts (SAQ doubles retry_delay when backoff is on).
        retry_delay=1.0, retry_backoff=True,
        ttl=3600)
