"""The fused vignette pass (media/fused.py): the C loop gives OpenCV's two passes' bytes
exactly, on strided views, in place, and refuses what it cannot read."""

from __future__ import annotations

import numpy as np
import pytest

from reelforge.media import fused
from reelforge.media.looks import vignette_yuv
from reelforge.media.render import planes_of


def planes(seed: int, shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return tuple(rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(3))


def test_every_product_and_offset_rounds_as_opencv_does():
    # All 65,536 (pixel, gain) pairs, with offsets up to saturation.
    value, gain = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8))
    offset = ((value.astype(int) * 7 + gain) % 256).astype(np.uint8)
    mine, theirs = np.empty_like(value), np.empty_like(value)
    fused.gain_offset(value, gain, offset, mine)
    fused.opencv_gain_offset(value, gain, offset, theirs)
    assert np.array_equal(mine, theirs)
    assert mine[255, 255] == 255 and mine[0, 0] == 0  # saturated, and none below 0


def test_a_strided_view_in_place_and_into_a_frame_buffer():
    width, height = 66, 40
    gain, offset = vignette_yuv(width, height, 0.4)
    src = planes(1, (height + 5, width + 9))[0]
    view = src[3:3 + height, 7:7 + width]  # rows strided, as draw_view's resize output
    frame = np.zeros(width * height * 3 // 2, np.uint8)
    y, _, _ = planes_of(frame, width, height)
    g, o = planes_of(gain, width, height)[0], planes_of(offset, width, height)[0]
    fused.gain_offset(view, g, o, y)
    expected = np.empty_like(y)
    fused.opencv_gain_offset(np.ascontiguousarray(view), g, o, expected)
    assert np.array_equal(y, expected)
    assert not frame[width * height:].any()  # nothing written past the plane
    fused.gain_offset(y, g, o, y)  # in place
    fused.opencv_gain_offset(expected, g, o, expected)
    assert np.array_equal(y, expected)


@pytest.mark.skipif(not fused.ACCELERATED, reason="the C extension did not build here")
def test_the_c_loop_refuses_what_it_cannot_read():
    a = np.zeros((4, 6), np.uint8)
    with pytest.raises(ValueError, match="2-D uint8"):
        fused.gain_offset(a.astype(np.uint16), a, a, a)
    with pytest.raises(ValueError, match="2-D uint8"):
        fused.gain_offset(a[:, ::2], a[:, :3], a[:, :3], np.zeros((4, 3), np.uint8))
    with pytest.raises(ValueError, match="offset is 5x4, dst is 6x4"):
        fused.gain_offset(a, a, a[:, :5], a)
    read_only = a.copy()
    read_only.flags.writeable = False
    with pytest.raises((ValueError, BufferError)):
        fused.gain_offset(a, a, a, read_only)
