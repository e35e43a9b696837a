"""The fused passes (media/fused.py): the C loops give OpenCV's bytes exactly (the
vignette's two passes; a window of a bilinear resize, vignetted or not), on strided
views, in place, and refuse what they cannot read."""

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


def resize_both(src, region, scale, skip, out_shape, vignette=None):
    """(ok, dst) from resize_view and from OpenCV, into fresh zeroed planes."""
    mine, theirs = np.zeros(out_shape, np.uint8), np.zeros(out_shape, np.uint8)
    ok = fused.resize_view(src, region, scale, skip, mine, vignette)
    assert ok == fused.opencv_resize_view(src, region, scale, skip, theirs, vignette)
    return ok, mine, theirs


def test_resized_views_are_opencvs_bytes():
    # Random regions, scales (shrinks past 4x, where the C loop takes its one-by-one
    # path, to enlargements; the exact halving and doubling), windows and vignettes.
    rng = np.random.default_rng(7)
    scales = [tuple(rng.uniform(0.2, 2.5, 2)) for _ in range(300)] + [(0.5, 0.5), (2.0, 2.0)]
    drawn = 0
    for fx, fy in scales:
        height, width = (int(v) for v in rng.integers(6, 160, 2))
        src = planes(int(rng.integers(1 << 30)), (height, width))[0]
        rw, rh = int(rng.integers(2, width + 1)), int(rng.integers(2, height + 1))
        x0, y0 = int(rng.integers(0, width - rw + 1)), int(rng.integers(0, height - rh + 1))
        skip = (int(rng.integers(0, 4)), int(rng.integers(0, 4)))
        out_shape = (max(1, round(rh * fy) - skip[1] - int(rng.integers(0, 3))),
                     max(1, round(rw * fx) - skip[0] - int(rng.integers(0, 3))))
        vignette = (tuple(planes(3, out_shape)[:2]) if rng.random() < 0.5 else None)
        ok, mine, theirs = resize_both(src, (x0, y0, rw, rh), (fx, fy), skip, out_shape,
                                       vignette)
        drawn += ok
        assert np.array_equal(mine, theirs), (height, width, x0, y0, rw, rh, fx, fy, skip)
    assert drawn > 250


def test_a_frame_sized_view_into_a_strided_plane():
    # A 720p luma view of a canvas, as the still renderer draws it, into the middle
    # of a wider buffer: the window is OpenCV's and nothing around it is touched.
    canvas = planes(11, (938, 1666))[0]
    gain, offset = (planes_of(p, 1280, 720)[0] for p in vignette_yuv(1280, 720, 0.4))
    for vignette in (None, (gain, offset)):
        buffer = np.zeros((724, 1290), np.uint8)
        window = buffer[2:722, 5:1285]
        assert fused.resize_view(canvas, (31, 17, 1397, 786), (1282.4 / 1397, 722.3 / 786),
                                 (1, 2), window, vignette)
        expected = np.zeros_like(window)
        fused.opencv_resize_view(canvas, (31, 17, 1397, 786), (1282.4 / 1397, 722.3 / 786),
                                 (1, 2), expected, vignette)
        assert np.array_equal(window, expected)
        window[:] = 0
        assert not buffer.any()


def test_a_resize_too_small_for_the_window_draws_nothing():
    src = planes(5, (50, 60))[0]
    ok, mine, theirs = resize_both(src, (0, 0, 40, 30), (0.9, 0.9), (1, 0), (27, 36))
    assert not ok and not mine.any() and not theirs.any()  # 36 wide: one short


@pytest.mark.skipif(not fused.ACCELERATED, reason="the C extension did not build here")
def test_the_resize_refuses_what_it_cannot_read():
    src, dst = np.zeros((20, 30), np.uint8), np.zeros((10, 10), np.uint8)
    with pytest.raises(ValueError, match="region must lie in src"):
        fused.resize_view(src, (25, 0, 10, 10), (1.1, 1.1), (0, 0), dst)
    with pytest.raises(ValueError, match="scales be positive"):
        fused.resize_view(src, (0, 0, 10, 10), (0.0, 1.1), (0, 0), dst)
    with pytest.raises(ValueError, match="gain is 10x9, dst is 10x10"):
        fused.resize_view(src, (0, 0, 10, 10), (1.1, 1.1), (0, 0), dst, (dst[:9], dst))
    with pytest.raises(ValueError, match="2-D uint8"):
        fused.resize_view(src, (0, 0, 10, 10), (1.1, 1.1), (0, 0), dst[:, ::2])


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
