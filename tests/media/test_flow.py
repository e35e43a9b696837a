"""Camera motion measured from frames, and carried on past the last one."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from reelforge.media import render
from reelforge.media.flow import FrameMotion, continue_path, measure_motion
from reelforge.media.motion import CameraMove, Viewport

W, H = 320, 180


def textured(width: int = 640, height: int = 360, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.random((24, 40)).astype(np.float32), (width, height),
                      interpolation=cv2.INTER_CUBIC)
    img = np.dstack([base * 200, base * 150 + 40, 255 - base * 200])
    for _ in range(60):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        cv2.circle(img, (x, y), int(rng.integers(3, 12)), tuple(rng.uniform(0, 255, 3)), -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def grays(path: list[Viewport]) -> list[np.ndarray]:
    anim = render.StillAnimator(textured(), W, H, path)
    return [render.planes_of(anim.frame(i), W, H)[0].copy() for i in range(len(path))]


def test_measures_a_pan() -> None:
    # The view slides right by 1.5 px a frame at scale 1.25: content moves left.
    path = [Viewport(1.25, 0.45 + 1.5 * k / (W * 1.25), 0.5) for k in range(8)]
    m = measure_motion(grays(path))
    assert m.dx == pytest.approx(-1.5, rel=0.2) and abs(m.dy) < 0.15
    assert m.zoom == pytest.approx(1.0, abs=2e-3) and not m.still


def test_measures_a_zoom() -> None:
    path = [Viewport(1.1 * 1.004 ** k, 0.5, 0.5) for k in range(8)]
    m = measure_motion(grays(path))
    assert m.zoom == pytest.approx(1.004, abs=1e-3)
    assert abs(m.dx) < 0.3 and abs(m.dy) < 0.3


def test_still_frames_are_still() -> None:
    assert measure_motion(grays([Viewport(1.0, 0.5, 0.5)] * 5)).still


def test_continued_pan_keeps_speed_then_eases_and_stays_in_frame() -> None:
    motion = FrameMotion(1.0, -2.0, 0.0, W, H)  # content left 2 px/frame: camera pans right
    path = continue_path(motion, 60)
    cx = np.array([vp.cx for vp in path])
    steps = np.diff(np.r_[0.5, cx]) * W
    assert steps[0] == pytest.approx(2.0, rel=0.1)  # the join keeps the measured speed
    assert np.all(steps > 0)  # no reversal, no stall
    assert steps[-1] < 0.3 * steps[0]  # eased out by the end
    assert np.abs(np.diff(steps)).max() < 0.12 * steps[0]  # smooth
    for k, vp in enumerate(path):
        uncovered = (abs(vp.cx - 0.5) - (0.5 - 0.5 / vp.scale)) * W * vp.scale
        assert vp.scale >= 1.0 and uncovered < (0.012 * W if k < 6 else 1e-6)  # mirrored px
    assert path[0].scale == pytest.approx(1.0, abs=0.002)  # starts at the last frame
    assert abs(cx[-1] - 0.5) <= 0.07 + 1e-9  # never runs out of picture
    far = continue_path(FrameMotion(1.0, -8.0, 0.0, W, H), 240)  # fast and long
    assert max(abs(vp.cx - 0.5) for vp in far) <= 0.07 + 1e-9
    assert max(vp.scale for vp in far) < 1.2


def test_continued_zoom_in_and_zoom_out() -> None:
    zin = continue_path(FrameMotion(1.003, 0.0, 0.0, W, H), 40)
    scales = np.array([vp.scale for vp in zin])
    assert scales[0] == pytest.approx(1.003, abs=1e-4) and np.all(np.diff(scales) > 0)
    assert continue_path(FrameMotion(1.05, 0.0, 0.0, W, H), 240)[-1].scale < 1.36
    zout = continue_path(FrameMotion(0.997, 0.0, 0.0, W, H), 40)
    assert all(vp.scale == 1.0 for vp in zout)  # nothing outside the picture: it holds


def test_prompt_move_when_the_source_is_still() -> None:
    still = FrameMotion(1.0, 0.0, 0.0, W, H)
    assert all(vp == Viewport(1.0, 0.5, 0.5) for vp in continue_path(still, 10))
    path = continue_path(still, 30, prompt_move=CameraMove("pan_left", 0.5))
    cx = [vp.cx for vp in path]
    assert cx[0] == pytest.approx(0.5, abs=0.005) and cx[-1] < 0.45
    assert all(b <= a for a, b in zip(cx, cx[1:]))
    assert math.isclose(path[-1].scale, max(vp.scale for vp in path))
