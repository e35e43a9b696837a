"""OpenCV's pool is held to one thread while blocks overlap, then given back."""

from __future__ import annotations

import threading

import cv2

from reelforge.media import cvpool


def test_single_threaded_nests_overlaps_and_restores() -> None:
    before = cv2.getNumThreads()
    inside, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def other_job() -> None:
        with cvpool.single_threaded():
            inside.set()
            release.wait(5)
            seen.append(cv2.getNumThreads())

    worker = threading.Thread(target=other_job)
    worker.start()
    assert inside.wait(5)
    with cvpool.single_threaded():
        with cvpool.single_threaded():
            assert cv2.getNumThreads() == 1
    # The other job's block is still open: the pool stays at one thread.
    assert cv2.getNumThreads() == 1
    release.set()
    worker.join(5)
    assert seen == [1]
    assert cv2.getNumThreads() == before


def test_single_threaded_restores_after_an_error() -> None:
    before = cv2.getNumThreads()
    try:
        with cvpool.single_threaded():
            raise RuntimeError("render failed")
    except RuntimeError:
        pass
    assert cv2.getNumThreads() == before
