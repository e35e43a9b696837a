"""Camera moves: eased, sub-pixel, smooth and inside the frame; the prompt parser."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reelforge.errors import Invalid
from reelforge.media.motion import (EASINGS, MOTION_VOCABULARY, MOVES, CameraMove,
                                    camera_path, ease, parse_motion, shake_offsets,
                                    viewport_at)

N = 120  # 5 s at 24 fps
MOVING = [kind for kind in MOVES if kind != "static"]
PEAK_SPEED = {"smoothstep": 1.5, "ease_in_out_cubic": 3.0, "gentle": 1.3}  # x average


def path_array(move: CameraMove, n: int = N) -> np.ndarray:
    return np.array([(vp.scale, vp.cx, vp.cy) for vp in camera_path(move, n)])


@pytest.mark.parametrize("name", EASINGS)
def test_easings_run_from_0_to_1_monotonically(name: str) -> None:
    values = [ease(name, i / 200) for i in range(201)]
    assert values[0] == pytest.approx(0.0) and values[-1] == pytest.approx(1.0)
    assert all(b > a for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("kind", MOVING)
@pytest.mark.parametrize("easing", ["smoothstep", "ease_in_out_cubic", "gentle"])
def test_moves_are_smooth_monotone_and_subpixel(kind: str, easing: str) -> None:
    move = CameraMove(kind, 0.6, easing, anchor=(0.3, 0.7), angle=0.8)
    values = path_array(move)
    values[:, 0] = np.log(values[:, 0])  # zoom is geometric: steady in log scale
    moving = [c for c in range(3) if abs(values[-1, c] - values[0, c]) > 1e-9]
    assert moving, f"{kind} does not move"
    eased = np.array([ease(easing, i / (N - 1)) for i in range(N)])
    for c in moving:
        v = values[:, c]
        d1 = np.diff(v)
        # Strictly monotone: no repeated values (no stair-steps), no reversals.
        assert np.all(d1 > 0) or np.all(d1 < 0), (kind, c)
        progress = (v - v[0]) / (v[-1] - v[0])
        primary = c == 0 if kind in ("zoom_in", "zoom_out", "push_in") else c > 0
        if primary:  # the move follows its easing exactly
            assert np.allclose(progress, eased if kind != "zoom_out" else 1 - eased[::-1])
        # No jumps: the fastest step is about the easing's peak speed, no more ...
        avg = 1.0 / (N - 1)
        assert np.abs(np.diff(progress)).max() <= PEAK_SPEED[easing] * 1.25 * avg
        # ... and speed changes gradually (second differences small).
        assert np.abs(np.diff(progress, 2)).max() <= 14 * avg / N
        # Sub-pixel: on a 1280 px frame steps are fractions of a pixel, not rounded.
        steps_px = np.abs(d1) * 1280
        assert np.any((steps_px % 1 > 0.01) & (steps_px % 1 < 0.99))


@pytest.mark.parametrize("kind", MOVES)
def test_view_stays_inside_the_frame(kind: str) -> None:
    for anchor in [(0.0, 0.0), (1.0, 1.0), (0.5, 0.5), (0.2, 0.9)]:
        move = CameraMove(kind, 1.0, "smoothstep", anchor=anchor, angle=2.0)
        for vp in camera_path(move, 30):
            slack = 0.5 - 0.5 / vp.scale
            assert vp.scale >= 1.0
            assert abs(vp.cx - 0.5) <= slack + 1e-9
            assert abs(vp.cy - 0.5) <= slack + 1e-9


def test_directions() -> None:
    zoom = CameraMove("zoom_in")
    first, last = viewport_at(zoom, 0, N), viewport_at(zoom, N - 1, N)
    assert last.scale > first.scale == 1.0
    zoom_out = path_array(CameraMove("zoom_out"))
    assert zoom_out[0, 0] > zoom_out[-1, 0] == 1.0
    assert np.diff(path_array(CameraMove("pan_left"))[:, 1]).max() < 0  # view moves left
    assert np.diff(path_array(CameraMove("pan_right"))[:, 1]).min() > 0
    assert np.diff(path_array(CameraMove("pan_up"))[:, 2]).max() < 0  # y grows downwards
    assert np.diff(path_array(CameraMove("pan_down"))[:, 2]).min() > 0
    static = path_array(CameraMove("static"))
    assert np.ptp(static, axis=0).max() == 0


def test_intensity_scales_the_move() -> None:
    weak = viewport_at(CameraMove("zoom_in", 0.2), N - 1, N).scale
    strong = viewport_at(CameraMove("zoom_in", 0.9), N - 1, N).scale
    assert 1.0 < weak < strong


def test_bad_values_are_invalid() -> None:
    with pytest.raises(Invalid):
        CameraMove("barrel_roll")
    with pytest.raises(Invalid):
        CameraMove("zoom_in", 1.5)
    with pytest.raises(Invalid):
        CameraMove("zoom_in", easing="bounce")


@pytest.mark.parametrize("prompt,kind", [
    ("Slow zoom in on her face", "zoom_in"),
    ("the camera pulls back to reveal the city", "zoom_out"),
    ("Pan left across the mountains", "pan_left"),
    ("PAN RIGHT over the bay", "pan_right"),
    ("tilt up to the sky", "pan_up"),
    ("tilt down to the river", "pan_down"),
    ("dolly in towards the door", "push_in"),
    ("a gentle drift over the sea", "drift"),
    ("static shot of a still lake", "static"),
    ("zoom out, then pan left", "zoom_out"),  # the first move named wins
])
def test_parse_motion_keywords(prompt: str, kind: str) -> None:
    assert parse_motion(prompt, "cinematic", 1).kind == kind


def test_speed_words_change_intensity() -> None:
    base = parse_motion("zoom in", "cinematic", 1).intensity
    assert parse_motion("zoom in slowly", "cinematic", 1).intensity < base
    assert parse_motion("zoom in quickly", "cinematic", 1).intensity > base
    assert parse_motion("suddenly zoom in", "cinematic", 1).easing == "ease_in_out_cubic"


def test_style_defaults_and_determinism() -> None:
    assert parse_motion("a red car", "cinematic", 5).kind == "push_in"
    energetic = parse_motion("a red car", "energetic", 5)
    minimal = parse_motion("a red car", "minimal", 5)
    assert energetic.intensity > minimal.intensity
    for style in ("cinematic", "dreamy", "energetic", "vintage", "luxury"):
        assert parse_motion("a red car", style, 9) == parse_motion("a red car", style, 9)
    kinds = {parse_motion("", "energetic", seed).kind for seed in range(40)}
    assert len(kinds) > 1  # the seed picks among the style's moves


def test_vocabulary_covers_every_move() -> None:
    assert set(MOTION_VOCABULARY["moves"]) == set(MOVES)
    assert all(MOTION_VOCABULARY["moves"][k] for k in MOVES)
    assert MOTION_VOCABULARY["speeds"]["slowly"] < 1 < MOTION_VOCABULARY["speeds"]["fast"]


def test_shake_is_deterministic_bounded_and_smooth() -> None:
    a = np.array(shake_offsets(120, 24, 3, 2.0))
    assert np.array_equal(a, np.array(shake_offsets(120, 24, 3, 2.0)))
    assert not np.array_equal(a, np.array(shake_offsets(120, 24, 4, 2.0)))
    assert np.abs(a).max() <= 2.0 + 1e-9
    assert np.abs(np.diff(a, axis=0)).max() < 2.0 * 2 * math.pi * 4.5 / 24
    assert shake_offsets(3, 24, 1, 0.0) == [(0.0, 0.0)] * 3
