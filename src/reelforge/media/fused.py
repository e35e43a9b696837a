"""Passes of the frame loop that OpenCV can only do as several, done as one.

``resize_view`` draws a still's view into a frame plane: a window of ``cv2.resize``
(bilinear) of a region, through the vignette where there is one. OpenCV would resize
the region into a new array (its horizontal pass fetching each pixel pair one at a
time), then copy the window out, then vignette it in two more passes. The C loop
(``_fused.c``) uses OpenCV's own fixed-point arithmetic, so its bytes are OpenCV's,
but fetches pixel pairs sixteen bytes at a time with a byte shuffle, blends rows in
16-bit lanes and writes straight into the frame: on the 2-core box a 720p luma view
takes 0.44-0.54 ms against 1.7-1.8 ms, 1080p 0.8-1.1 ms against 3.8-4.0 ms.

``gain_offset(src, gain, offset, dst)`` writes ``src * gain / 255 + offset`` (uint8
planes, rounded to nearest, saturated) into ``dst``: the vignette on its own, which
darkens each plane towards its black (16 for luma, 128 for chroma). OpenCV needs a
scaled multiply and then an add: two passes; the C loop does both at once.

pip builds the extension where a C compiler is present (for AVX2 too on x86-64).
Where it did not build, the same bytes come from OpenCV (the C arithmetic is OpenCV's
for the resize and exact for the vignette, whose v / 255 never ends in a half); the
tests hold the two to each other. ``ACCELERATED`` says which one runs.
"""

from __future__ import annotations

import cv2
import numpy as np

try:
    from ._fused import gain_offset as _gain_offset, resize_view as _resize_view
except ImportError:  # built without a C compiler: OpenCV does it in several passes
    _gain_offset = _resize_view = None

ACCELERATED = _gain_offset is not None


def gain_offset(src: np.ndarray, gain: np.ndarray, offset: np.ndarray,
                dst: np.ndarray) -> None:
    """``dst = src * gain / 255 + offset`` on 2-D uint8 arrays of one shape (rows may
    be strided; ``dst`` may be ``src``)."""
    if _gain_offset is not None:
        _gain_offset(src, gain, offset, dst)
        return
    opencv_gain_offset(src, gain, offset, dst)


def opencv_gain_offset(src: np.ndarray, gain: np.ndarray, offset: np.ndarray,
                       dst: np.ndarray) -> None:
    """The same with OpenCV: the fallback, and the reference the tests hold C to."""
    cv2.multiply(src, gain, dst=dst, scale=1.0 / 255.0)
    cv2.add(dst, offset, dst=dst)


Region = tuple[int, int, int, int]  # x0, y0, width, height


def resize_view(src: np.ndarray, region: Region, scale: tuple[float, float],
                skip: tuple[int, int], dst: np.ndarray,
                vignette: tuple[np.ndarray, np.ndarray] | None = None) -> bool:
    """Fill ``dst`` (2-D uint8, rows may be strided) with ``cv2.resize`` (bilinear) of
    ``src``'s ``region`` by ``scale`` (fx, fy), less its first ``skip`` (x, y) columns
    and rows, cut to ``dst``'s size; through ``gain_offset`` with ``vignette`` (gain,
    offset) where given. False, ``dst`` untouched, where that resize comes out too
    small to fill ``dst``."""
    if _resize_view is not None:
        return _resize_view(src, *region, *scale, *skip, dst, *(vignette or ()))
    return opencv_resize_view(src, region, scale, skip, dst, vignette)


def opencv_resize_view(src: np.ndarray, region: Region, scale: tuple[float, float],
                       skip: tuple[int, int], dst: np.ndarray,
                       vignette: tuple[np.ndarray, np.ndarray] | None = None) -> bool:
    """The same with OpenCV: the fallback, and the reference the tests hold C to."""
    (x0, y0, width, height), (skip_x, skip_y) = region, skip
    out = cv2.resize(src[y0:y0 + height, x0:x0 + width], None, fx=scale[0], fy=scale[1],
                     interpolation=cv2.INTER_LINEAR)
    out_h, out_w = dst.shape[:2]
    if out.shape[0] < skip_y + out_h or out.shape[1] < skip_x + out_w:
        return False
    view = out[skip_y:skip_y + out_h, skip_x:skip_x + out_w]
    if vignette is None:
        np.copyto(dst, view)
    else:
        opencv_gain_offset(view, *vignette, dst)
    return True
