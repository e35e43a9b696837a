"""The still grade: graded tile by tile on two threads, the same as in one piece; the
glow made small, close to one made at full size."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
from skimage import data as skdata

from reelforge.media import looks


def photo(width: int, height: int) -> np.ndarray:
    return cv2.resize(skdata.astronaut(), (width, height), interpolation=cv2.INTER_CUBIC)


def test_tiles_on_two_threads_grade_like_one_piece():
    img = photo(1001, 573)  # two threads; rows that do not fill the last tile
    assert img.shape[0] * img.shape[1] >= looks._TWO_THREAD_PIXELS
    for name in ("cinematic", "energetic", "vintage"):
        look = looks.LOOKS[name]
        whole, _ = looks._grade_pixels(img, look)
        assert np.array_equal(looks.grade(img, look), whole), name


def test_the_small_glow_is_close_to_a_full_size_one(monkeypatch):
    img = photo(1664, 936)
    look = looks.LOOKS["dreamy"]
    plain = looks.grade(img, replace(look, glow=0.0))
    small = looks.grade(img, look)
    monkeypatch.setattr(looks, "GLOW_SIDE", 1 << 20)  # the glow made at full size
    full = looks.grade(img, look)
    diff = np.abs(small.astype(int) - full)
    assert diff.max() <= 6 and diff.mean() < 0.3
    assert (small.astype(int) - plain).mean() > 3  # and there is a glow to speak of
