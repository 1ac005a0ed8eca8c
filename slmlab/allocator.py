"""Keep freed memory inside the process, so a replay's large short-lived arrays reuse pages already mapped.

A replay allocates and frees dozens of arrays of 8 MB per million requests. glibc hands each one to the kernel
with mmap and takes it back with munmap, so every replay pays a page fault on each 4 KiB page it writes (about
1.5 us each on a virtual machine: 20 ms for the nine result arrays of one policy over a million requests, more
than the accounting itself). Raising glibc's mmap and trim thresholds keeps freed blocks in the heap for the
next array. The cost: the process keeps up to `TRIM_BYTES` of freed memory instead of returning it at once.
"""

from __future__ import annotations

import ctypes
import sys
from functools import cache

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_BYTES = 256 << 20  # blocks up to this size come from the heap and are reused
TRIM_BYTES = 512 << 20  # free memory at the top of the heap kept for reuse


@cache
def keep_freed_memory() -> bool:
    """Raise glibc's thresholds once per process; False (and nothing changed) off glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # glibc's; musl and others lack it
    except (AttributeError, OSError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_BYTES))
