"""OpenCV's thread pool, held to one thread while frames are piped to x264.

OpenCV runs its larger operations (resize, colour conversion, blurs) on a pool of its
own threads, one per core, whose workers spin for a while waiting for the next piece.
While x264 encodes it keeps every core busy, so a frame producer gains nothing from
the pool and the spinning only takes cycles from the encoder (a 720p zoom render on
the 2-core box: 0.76 CPU-s of ours with the pool, 0.60 without, the encoder's the
same). ``single_threaded()`` holds the pool at one thread for a block. Blocks may nest
and overlap across threads (several jobs in one worker); the process's own setting
comes back when the last one ends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import cv2


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._saved = 0

    @contextmanager
    def single_threaded(self) -> Iterator[None]:
        with self._lock:
            if self._holders == 0:
                self._saved = cv2.getNumThreads()
                cv2.setNumThreads(1)
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0:
                    cv2.setNumThreads(self._saved)


single_threaded = _Pool().single_threaded
