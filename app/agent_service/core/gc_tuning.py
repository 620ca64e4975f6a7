"""Tunes the garbage collector for long-running processes: short full passes, rare young ones."""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 50_000


def freeze_startup_objects() -> int:
    """Moves everything alive after start-up (modules, SDK clients, pydantic schemas: about
    300,000 objects) into the permanent generation, which the collector never scans again.

    A full collection over them took about 175 ms on the benchmark machine: a pause that hit
    whichever requests were in flight and set the API's tail latency under load. Call once,
    when start-up is done. Also makes young-generation passes rarer. Returns how many objects
    were frozen.
    """
    gc.collect()
    gc.freeze()
    # A young-generation pass every 700 allocations (the default) ran every other request or
    # two; every 50,000 the API measured about 7 % less CPU per submission (paired runs). What
    # survives is scanned as before, so cyclic garbage still goes within a few passes.
    gc.set_threshold(GEN0_THRESHOLD, 20, 10)
    return gc.get_freeze_count()
