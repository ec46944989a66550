"""A small shared thread pool for the simulators' bulk array work.

numpy releases the GIL while it fills random arrays, runs ufuncs and calls BLAS, so
independent chunks (frames of sensor noise, row blocks of a drift innovation) run in
parallel threads. Every chunk has its own seeded generator and a fixed extent, so the
numbers never depend on how many threads there are.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_POOL: list[ThreadPoolExecutor] = []


def workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def run(jobs: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run ``jobs`` (argument-less callables), in threads when that can help."""
    if len(jobs) < 2 or workers() == 1:
        return [job() for job in jobs]
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(workers(), thread_name_prefix="labpnn-sim"))
    futures = [_POOL[0].submit(job) for job in jobs]
    return [f.result() for f in futures]
