"""The C heap of a rendering process: freed image buffers stay mapped for the next one.

A still's set-up makes some tens of MB of short-lived arrays (the decoded photo, the
canvas, the grade's float passes). glibc's malloc gives large blocks back to the kernel
as they are freed (blocks over its mmap threshold are unmapped; a free heap top over
the trim threshold is cut off), so every render faults the same memory in again:
about 9,000 page faults in a 720p still's set-up on the 2-core box, 30 ms of it, all
while x264 waits for its first frame. ``keep_freed_memory()`` raises both thresholds
once per process; later renders reuse the pages. The price is that a process keeps
its high-water mark of heap (a render's peak) between jobs instead of shrinking.
Only glibc is tuned; elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import functools

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest: blocks above this are still mmap'd
TRIM_THRESHOLD = 512 << 20


@functools.cache
def keep_freed_memory() -> bool:
    """Tune glibc's malloc (once per process); True where it took the settings."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
