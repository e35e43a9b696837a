"""Transitions between two yuv420p frames, done in the frame pipe (no extra decode).

``blend(kind, a, b, t, width, height, out)`` writes into ``out`` the frame ``t`` (0..1,
already eased by the caller or not) of going from ``a`` to ``b``:

* ``crossfade``: a dissolve;
* ``slide``: ``b`` pushes ``a`` out to the left;
* ``wipe``: a soft-edged line sweeps left to right, revealing ``b``;
* ``zoom``: ``a`` zooms in and dissolves into ``b``, which settles from slightly large;
* ``cut``: ``b`` from the midpoint on.

All work plane by plane on flat yuv420p buffers; slides and wipes move by whole
pixels (they travel tens of pixels a frame, so stepping is invisible).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..errors import Invalid
from .render import planes_of

KINDS = ("crossfade", "slide", "wipe", "zoom", "cut")


def ease(t: float) -> float:
    t = min(1.0, max(0.0, t))
    return 0.5 - 0.5 * math.cos(math.pi * t)


def blend(kind: str, a: np.ndarray, b: np.ndarray, t: float, width: int, height: int,
          out: np.ndarray) -> np.ndarray:
    if kind not in _KINDS:
        raise Invalid(f"unknown transition {kind!r}", fix=f"Use one of: {', '.join(KINDS)}.")
    _KINDS[kind](a, b, min(1.0, max(0.0, t)), width, height, out)
    return out


def _crossfade(a: np.ndarray, b: np.ndarray, t: float, width: int, height: int,
               out: np.ndarray) -> None:
    cv2.addWeighted(a, 1.0 - t, b, t, 0.0, dst=out)


def _cut(a: np.ndarray, b: np.ndarray, t: float, width: int, height: int,
         out: np.ndarray) -> None:
    out[:] = b if t >= 0.5 else a


def _slide(a: np.ndarray, b: np.ndarray, t: float, width: int, height: int,
           out: np.ndarray) -> None:
    shift = int(round(ease(t) * width / 2)) * 2  # even, so chroma moves by whole pixels
    for pa, pb, po in zip(planes_of(a, width, height), planes_of(b, width, height),
                          planes_of(out, width, height)):
        s = shift * pa.shape[1] // width
        w = pa.shape[1]
        po[:, :w - s] = pa[:, s:]
        po[:, w - s:] = pb[:, :s]


def _wipe(a: np.ndarray, b: np.ndarray, t: float, width: int, height: int,
          out: np.ndarray) -> None:
    soft = max(4.0, width * 0.04)
    edge = ease(t) * (width + 2 * soft) - soft  # from left of the frame to its right
    for pa, pb, po in zip(planes_of(a, width, height), planes_of(b, width, height),
                          planes_of(out, width, height)):
        ratio = pa.shape[1] / width
        xs = (np.arange(pa.shape[1], dtype=np.float32) + 0.5) / ratio
        alpha = np.clip((edge - xs) / soft + 0.5, 0.0, 1.0)[None, :]  # 1: show b
        po[:] = (pa * (1.0 - alpha) + pb * alpha + 0.5).astype(np.uint8)


def _zoom(a: np.ndarray, b: np.ndarray, t: float, width: int, height: int,
          out: np.ndarray) -> None:
    e = ease(t)
    za, zb = 1.0 + 0.35 * e, 1.0 + 0.12 * (1.0 - e)
    for pa, pb, po in zip(planes_of(a, width, height), planes_of(b, width, height),
                          planes_of(out, width, height)):
        h, w = pa.shape
        wa = cv2.warpAffine(pa, _about_centre(za, w, h), (w, h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT)
        wb = cv2.warpAffine(pb, _about_centre(zb, w, h), (w, h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT)
        cv2.addWeighted(wa, 1.0 - e, wb, e, 0.0, dst=po)


def _about_centre(scale: float, w: int, h: int) -> np.ndarray:
    cx, cy = w / 2.0, h / 2.0
    return np.array([[scale, 0.0, cx - scale * cx], [0.0, scale, cy - scale * cy]])


_KINDS = {"crossfade": _crossfade, "slide": _slide, "wipe": _wipe, "zoom": _zoom, "cut": _cut}
