"""Keeps the garbage collector's full passes short in long-running processes."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> int:
    """Moves everything alive after start-up (modules, SDK clients, pydantic schemas: about
    300,000 objects) into the permanent generation, which the collector never scans again.

    A full collection over them took about 175 ms on the benchmark machine: a pause that hit
    whichever requests were in flight and set the API's tail latency under load. Call once,
    when start-up is done. Returns how many objects were frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
