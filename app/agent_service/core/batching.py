"""Group commit for the API's hot path: concurrent requests share one round trip.

Each request's own Postgres statement and Redis command cost more CPU in the client libraries
(pool checkout, locks, futures) than the work itself; under load an API process spent most of
its time there. A `MicroBatcher` gathers the items that arrive while a flush is in flight and
hands them to the next flush together, so batches grow with load and a lone request is flushed
on the next turn of the event loop, with no timer and so no added latency.

A same-tick batcher (the DataLoader pattern, `aiodataloader`) would send batches of one or two
here: requests reach the API on different ticks. Group commit needs the accumulate-while-in-flight
rule, which is what this module is.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class MicroBatcher(Generic[Item, Result]):
    """`await batcher.submit(item)` returns that item's result from `flush(items)`.

    `flush` gets the items in arrival order and returns one result per item, in the same
    order. If it raises, every item of that batch gets the error. At most `max_in_flight`
    flushes run at once (so one slow round trip does not stall the next batch), each of at
    most `max_batch` items.
    """

    def __init__(self, flush: Callable[[list[Item]], Awaitable[Sequence[Result]]], *,
                 max_batch: int = 128, max_in_flight: int = 2) -> None:
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError("max_batch and max_in_flight must be at least 1")
        self._flush = flush
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flushers: set[asyncio.Task[None]] = set()

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if len(self._flushers) < self._max_in_flight:
            # A fresh context: the flush serves many requests, so it must not carry the first
            # one's request id or trace span into its logs and spans.
            flusher = asyncio.create_task(self._drain(), context=contextvars.Context())
            self._flushers.add(flusher)
        # A cancelled caller (client gone) cancels only its own future; the flush goes on for
        # the rest of its batch.
        return await future

    async def _drain(self) -> None:
        try:
            await self._flush_pending()
        finally:
            # Leaves the in-flight set in the same step that found nothing pending. A done
            # callback would run a turn later, after the callers just answered, and an item
            # one of them submits at once would find every slot taken and wait for a flush
            # that never starts.
            if (task := asyncio.current_task()) is not None:
                self._flushers.discard(task)

    async def _flush_pending(self) -> None:
        while self._pending:
            batch = self._pending[:self._max_batch]
            del self._pending[:self._max_batch]
            try:
                results = await self._flush([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"flush returned {len(results)} results for "
                                       f"{len(batch)} items")
            except Exception as error:  # noqa: BLE001 - handed to every waiting caller
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            except BaseException:
                # Cancelled (the loop is closing): nobody may wait forever.
                for _, future in batch:
                    future.cancel()
                raise
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def drain(self) -> None:
        """Waits until every submitted item has been flushed (for shutdown)."""
        while self._flushers:
            await asyncio.gather(*self._flushers, return_exceptions=True)
