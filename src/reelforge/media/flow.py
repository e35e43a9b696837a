"""Camera motion measured between frames, and carried on past the last one.

``measure_motion(grays)`` estimates the camera's move per frame over a few consecutive
greyscale frames by Fourier–Mellin phase correlation (zoom from the log-polar
magnitude spectra, then the shift), the median over the pairs.

``continue_path(motion, frames, ...)`` turns that per-frame move into viewports over the
final frame (see ``motion.Viewport``) for ``frames`` more frames: the camera goes on at
the measured speed, then eases to a slow stop, its travel bending towards a limit. The
view stays on the picture: as a pan travels, the zoom grows (easing in) just enough to
keep the frame covered, starting from exactly the last frame so the join is seamless;
a zoom out comes to a hold (there is nothing outside the picture to reveal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .motion import CameraMove, Viewport, ease


@dataclass(frozen=True)
class FrameMotion:
    zoom: float  # content scale per frame (> 1: the camera moves in)
    dx: float  # content shift per frame, in pixels of the frame (+: content moves right)
    dy: float
    width: int
    height: int

    @property
    def still(self) -> bool:
        shift = math.hypot(self.dx, self.dy) / max(self.width, self.height)
        return abs(math.log(self.zoom)) < 6e-4 and shift < 1e-3  # below measuring noise


ANALYSIS_WIDTH = 480  # frames are measured at most this wide


def _hann(h: int, w: int) -> np.ndarray:
    return cv2.createHanningWindow((w, h), cv2.CV_32F)


def _zoom_about_centre(a: np.ndarray, b: np.ndarray) -> float:
    """Scale from a to b (about the centre) by phase correlation of log-polar images,
    using the ring from 15% to 100% of the radius (the centre is oversampled to mush
    in a log-polar image and would drown the signal)."""
    h, w = a.shape
    radius = min(h, w) / 2
    size = (512, 256)  # (log radius, angle) samples
    per_log = size[0] / math.log(radius)
    first = int(per_log * math.log(0.15 * radius))
    pa = cv2.warpPolar(_edges(a), size, (w / 2, h / 2), radius, cv2.WARP_POLAR_LOG)
    pb = cv2.warpPolar(_edges(b), size, (w / 2, h / 2), radius, cv2.WARP_POLAR_LOG)
    pa, pb = (np.ascontiguousarray(x[:, first:]) for x in (pa, pb))
    taper = np.hanning(pa.shape[1] + 2)[1:-1].astype(np.float32)
    window = np.ascontiguousarray(np.tile(taper, (size[1], 1)))  # taper along radius
    (dr, _), _ = cv2.phaseCorrelate(pa, pb, window)
    return math.exp(dr / per_log)


def _edges(img: np.ndarray) -> np.ndarray:
    """Gradient magnitude: structure to correlate, without the flat gradients."""
    return cv2.magnitude(cv2.Sobel(img, cv2.CV_32F, 1, 0), cv2.Sobel(img, cv2.CV_32F, 0, 1))


def _pair(a: np.ndarray, b: np.ndarray, rounds: int = 4) -> tuple[float, float, float]:
    """(zoom, dx, dy) from a to b. The shift by phase correlation, then in each round
    the zoom left over once the current estimate is undone (log-polar phase correlation
    reads small zooms short, so the residual is measured again), then the shift again."""
    h, w = a.shape
    window = _hann(h, w)
    (dx, dy), _ = cv2.phaseCorrelate(a, b, window)
    zoom = 1.0
    cx, cy = w / 2.0, h / 2.0
    for _ in range(rounds):
        # b with the current zoom (about the centre) and shift taken out: b ~ a.
        undo = np.array([[zoom, 0.0, cx - zoom * cx + dx], [0.0, zoom, cy - zoom * cy + dy]])
        b_back = cv2.warpAffine(b, undo, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REFLECT)
        residual = _zoom_about_centre(a, b_back)
        zoom *= residual
        unzoom = np.array([[zoom, 0.0, cx - zoom * cx], [0.0, zoom, cy - zoom * cy]])
        b_flat = cv2.warpAffine(b, unzoom, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REFLECT)
        (dx, dy), _ = cv2.phaseCorrelate(a, b_flat, window)
        if abs(residual - 1.0) < 2e-5:
            break
    return zoom, float(dx), float(dy)


def measure_motion(grays: Sequence[np.ndarray]) -> FrameMotion:
    """The median per-frame camera motion over consecutive greyscale frames."""
    h, w = grays[-1].shape
    k = min(1.0, ANALYSIS_WIDTH / w)
    small = [cv2.resize(g, (max(8, round(w * k)), max(8, round(h * k))),
                        interpolation=cv2.INTER_AREA).astype(np.float32) if k < 1
             else g.astype(np.float32) for g in grays]
    found = [_pair(a, b) for a, b in zip(small, small[1:])]
    if not found:
        return FrameMotion(1.0, 0.0, 0.0, w, h)
    zooms, dxs, dys = zip(*found)
    return FrameMotion(float(np.median(zooms)), float(np.median(dxs)) / k,
                       float(np.median(dys)) / k, w, h)


def _coverage_scale(cx: float, cy: float) -> float:
    """The least zoom at which a view centred at (cx, cy) stays inside the picture."""
    off = max(abs(cx - 0.5), abs(cy - 0.5))
    return 1.0 / max(1e-3, 1.0 - 2.0 * off)


def _profile(u: float) -> float:
    """Distance travelled by time ``u`` (0..1) at unit speed that holds for the first
    half and eases out to a fifth over the second (the integral of the speed)."""
    if u <= 0.5:
        return u
    v = (u - 0.5) / 0.5  # 0..1 over the second half
    # speed falls from 1 to 0.2 along a smoothstep: integrate it in closed form
    smooth_integral = v ** 3 - v ** 4 / 2.0  # integral of 3v^2 - 2v^3
    return 0.5 + 0.5 * (v - 0.8 * smooth_integral)


MAX_TRAVEL = 0.07  # the furthest a carried-on pan goes, as a fraction of the frame
MAX_LOG_ZOOM = math.log(1.35)  # the deepest a carried-on zoom goes
COVER_RAMP = 6.0  # frames over which the framing zoom eases in


def _saturate(rate: float, distance: float, cap: float) -> float:
    """Travel after ``distance`` frames at ``rate`` per frame, bending smoothly towards
    ``cap`` (same speed at the start, never past the cap)."""
    if rate == 0.0:
        return 0.0
    sign = 1.0 if rate > 0 else -1.0
    return sign * cap * (1.0 - math.exp(-abs(rate) * distance / cap))


def continue_path(motion: FrameMotion, frames: int, *, prompt_move: CameraMove | None = None,
                  start: int = 1) -> list[Viewport]:
    """Viewports over the final frame for the next ``frames`` frames (frame ``k`` is
    ``start + k`` frames past it; negative times give the poses leading up to it).

    The move starts at the measured speed, holds, then eases out; its travel bends
    towards a limit (7% of the frame for a pan, 1.35x for a zoom) so it never runs out
    of picture. The zoom that keeps a panned view covered eases in over the first part
    of the extension (the few pixels it leaves uncovered meanwhile are mirrored)."""
    path = []
    w, h = motion.width, motion.height
    log_zoom = math.log(max(1e-6, motion.zoom))
    target = None
    if motion.still and prompt_move is not None and prompt_move.kind != "static":
        target = _prompt_target(prompt_move)
    ramp = COVER_RAMP
    for k in range(frames):
        t = start + k  # frames past the last one
        if target is not None:
            e = ease("smoothstep", t / frames)
            scale = math.exp(target[0] * e)
            cx, cy = 0.5 + target[1] * e, 0.5 + target[2] * e
        else:
            dist = _profile(t / frames) * frames if t >= 0 else float(t)
            scale = math.exp(_saturate(log_zoom, dist, MAX_LOG_ZOOM) if t >= 0
                             else log_zoom * dist)
            # The content moved by (dx, dy) a frame, so the view moves the other way.
            if t >= 0:
                cx = 0.5 + _saturate(-motion.dx / w, dist, MAX_TRAVEL)
                cy = 0.5 + _saturate(-motion.dy / h, dist, MAX_TRAVEL)
            else:
                cx, cy = 0.5 - motion.dx * dist / w, 0.5 - motion.dy * dist / h
        if t >= 0:
            cover = _coverage_scale(cx, cy)
            scale = max(1.0, scale, 1.0 + (cover - 1.0) * ease("smoothstep", t / ramp))
        path.append(Viewport(scale, cx, cy))
    return path


def _prompt_target(move: CameraMove) -> tuple[float, float, float]:
    """(log zoom, centre shift x, y) at the end of an extension for a named move."""
    reach = 0.04 + 0.1 * move.intensity
    zoom = math.log(1.0 + 0.12 + 0.3 * move.intensity)
    return {
        "zoom_in": (zoom, 0.0, 0.0), "push_in": (zoom * 0.7, 0.0, 0.0),
        "zoom_out": (zoom * 0.5, 0.0, 0.0),  # cannot reveal more: a gentle push instead
        "pan_left": (0.0, -reach, 0.0), "pan_right": (0.0, reach, 0.0),
        "pan_up": (0.0, 0.0, -reach), "pan_down": (0.0, 0.0, reach),
        "drift": (0.0, reach * 0.5 * math.cos(move.angle), reach * 0.5 * math.sin(move.angle)),
    }.get(move.kind, (0.0, 0.0, 0.0))
