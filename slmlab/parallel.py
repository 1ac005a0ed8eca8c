"""Work split across the machine's cores: one chunk a core, in threads, for compiled kernels that release the GIL.

Shared by the warehouse (label draws) and the replay (per-request passes), so both queue on one pool.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
PARALLEL_FROM = 100_000  # requests; below this one thread is faster than handing work to the others


@cache
def _helpers() -> ThreadPoolExecutor:
    """Threads for all but one chunk (the caller runs the last one itself); made on first use and shared by every
    replay of the process, so replays in the dashboard's background jobs queue here instead of oversubscribing."""
    return ThreadPoolExecutor(max_workers=CORES - 1, thread_name_prefix="slmlab-kernel")


def in_chunks(kernel: Callable[..., object], n: int, *args: object) -> list[object]:
    """kernel(lo, hi, *args) over requests [0, n) in one chunk per core, in parallel (the kernel releases the
    GIL); the chunks' results in request order. Chunks must write disjoint rows, so the split never changes
    a result."""
    if CORES == 1 or n < PARALLEL_FROM:
        return [kernel(0, n, *args)]
    bounds = [n * c // CORES for c in range(CORES + 1)]
    others = [_helpers().submit(kernel, lo, hi, *args) for lo, hi in zip(bounds[:-2], bounds[1:-1])]
    last = kernel(bounds[-2], bounds[-1], *args)
    return [future.result() for future in others] + [last]
