"""The replay keeps freed memory for its next arrays instead of paying page faults on every allocation."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import ctypes, resource, sys
sys.path.insert(0, {root!r})
if {tuned}:
    from slmlab.allocator import keep_freed_memory
    assert keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
size = 32 << 20  # one 4M-request float64 column
block = libc.malloc(size); ctypes.memset(block, 1, size); libc.free(block)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = libc.malloc(size); ctypes.memset(block, 1, size); libc.free(block)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults_on_second_allocation(tuned: bool) -> int:
    from slmlab.paths import PROJECT_ROOT

    code = PROBE.format(root=str(PROJECT_ROOT), tuned=tuned)
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_freed_block_is_reused_without_page_faults() -> None:
    untuned, tuned = faults_on_second_allocation(False), faults_on_second_allocation(True)
    assert untuned > 4000  # glibc mmaps a fresh 32 MB block: one fault per 4 KiB page written
    assert tuned < 100  # the freed block stayed in the heap and is reused as it is
