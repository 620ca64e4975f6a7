"""How long the program takes to evaluate each stack under the mocks harness.

Prints one JSON document: per stack, the wall time of a cold evaluation in a fresh interpreter
(imports included, what a user waits for before a preview starts talking to providers) and the
median of warm in-process evaluations, side by side so the stacks compare in one run.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from harness import STACKS, render  # noqa: E402

WARM_RUNS = 5
COLD = """
import sys, time
sys.path[:0] = [{root!r}, {tests!r}]
start = time.perf_counter()
from harness import render
rendered = render({stack!r})
print(time.perf_counter() - start, len(rendered.resources))
"""


def cold(stack: str) -> tuple[float, int]:
    code = COLD.format(root=str(ROOT), tests=str(ROOT / "tests"), stack=stack)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=120).stdout.split()
    return float(out[0]), int(out[1])


def main() -> None:
    results = {}
    for stack in STACKS:
        cold_seconds, resources = cold(stack)
        warm = []
        for _ in range(WARM_RUNS):
            start = time.perf_counter()
            render(stack)
            warm.append(time.perf_counter() - start)
        results[stack] = {"resources": resources, "cold_seconds": round(cold_seconds, 3),
                          "warm_median_seconds": round(statistics.median(warm), 3),
                          "warm_max_seconds": round(max(warm), 3)}
    print(json.dumps(  # noqa: T201 - the benchmark reports on stdout
        {"benchmark": "program-evaluation", "warm_runs": WARM_RUNS,
                      "stacks": results}, indent=2))


if __name__ == "__main__":
    main()
