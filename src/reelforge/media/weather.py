"""Procedural rain, snow and fog over RGB frames, seeded and smooth in time.

Each effect precomputes its layers once (tileable textures a little larger than the
frame) and, per frame, only takes a moving window of them and blends it in:

* rain: two layers of motion-blurred streaks falling at a slant at different speeds
  (near drops faster and brighter), a slight cool, darker cast;
* snow: two layers of soft flakes drifting down with a sideways sway;
* fog: a low-frequency density field drifting sideways, thicker towards the bottom,
  that lifts the blacks and washes colour out towards a pale grey.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from ..errors import Invalid
from .prompt import WEATHERS


def _streaks(width: int, height: int, rng: np.random.Generator, count: int, length: float,
             angle: float, thickness: int) -> np.ndarray:
    layer = np.zeros((height, width), np.float32)
    dx, dy = math.sin(angle) * length, math.cos(angle) * length
    xs = rng.uniform(0, width, count)
    ys = rng.uniform(0, height, count)
    levels = rng.uniform(0.35, 1.0, count)
    for x, y, v in zip(xs, ys, levels):
        p0 = (int(x), int(y))
        p1 = (int(x + dx), int(y + dy))
        cv2.line(layer, p0, p1, float(v), thickness, cv2.LINE_AA)
        # wrap around, so the texture tiles vertically and horizontally
        cv2.line(layer, (p0[0] - width, p0[1]), (p1[0] - width, p1[1]), float(v), thickness,
                 cv2.LINE_AA)
        cv2.line(layer, (p0[0], p0[1] - height), (p1[0], p1[1] - height), float(v),
                 thickness, cv2.LINE_AA)
    return cv2.GaussianBlur(layer, (0, 0), 0.6)


def _flakes(width: int, height: int, rng: np.random.Generator, count: int,
            radius: float) -> np.ndarray:
    layer = np.zeros((height, width), np.float32)
    for x, y, r in zip(rng.uniform(0, width, count), rng.uniform(0, height, count),
                       rng.uniform(0.5, 1.0, count) * radius):
        for ox in (0, -width):
            for oy in (0, -height):
                cv2.circle(layer, (int(x + ox), int(y + oy)), max(1, int(round(r))), 1.0,
                           -1, cv2.LINE_AA)
    return cv2.GaussianBlur(layer, (0, 0), max(0.6, radius * 0.5))


def _noise_field(width: int, height: int, rng: np.random.Generator,
                 octaves: int = 4) -> np.ndarray:
    field = np.zeros((height, width), np.float32)
    for k in range(octaves):
        cells = 3 * 2 ** k
        grid = rng.random((cells, int(cells * width / height) + 1)).astype(np.float32)
        grid = np.concatenate([grid, grid[:, :1]], axis=1)  # tile horizontally
        field += cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC) / 2 ** k
    field -= field.min()
    return field / max(1e-6, float(field.max()))


def _window(layer: np.ndarray, ox: float, oy: float, width: int, height: int) -> np.ndarray:
    """The frame-sized window of a tiling ``layer`` at offset (ox, oy), wrapping, with
    sub-pixel precision (slow drifts glide instead of stepping)."""
    lh, lw = layer.shape
    matrix = np.array([[1.0, 0.0, ox % lw], [0.0, 1.0, oy % lh]], dtype=np.float64)
    return cv2.warpAffine(layer, matrix, (width, height),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_WRAP)


class Weather:
    """Applies the named effects (any of rain, snow, fog) to RGB frames in order."""

    def __init__(self, kinds: Sequence[str], width: int, height: int, fps: float,
                 seed: int = 0) -> None:
        for kind in kinds:
            if kind not in WEATHERS:
                raise Invalid(f"unknown weather {kind!r}",
                              fix=f"Use one of: {', '.join(WEATHERS)}.")
        self.kinds = tuple(k for k in ("fog", "rain", "snow") if k in kinds)
        self.width, self.height, self.fps = width, height, fps
        rng = np.random.default_rng(seed)
        short = min(width, height)
        self.layers: dict[str, list[tuple[np.ndarray, float, float, float]]] = {}
        if "rain" in self.kinds:
            angle = 0.18
            far = _streaks(width, height, rng, int(width * height / 900), short * 0.05, angle, 1)
            near = _streaks(width, height, rng, int(width * height / 4000), short * 0.11, angle,
                            max(1, short // 360))
            speed = short * 1.6  # pixels a second for the near layer
            self.layers["rain"] = [(far, speed * 0.55 * math.sin(angle), speed * 0.55, 0.5),
                                   (near, speed * math.sin(angle), speed, 0.8)]
        if "snow" in self.kinds:
            far = _flakes(width, height, rng, max(24, int(width * height / 900)),
                          max(1.2, short / 300))
            near = _flakes(width, height, rng, max(4, int(width * height / 6000)),
                           max(2.0, short / 110))
            self.layers["snow"] = [(far, 0.0, short * 0.06, 0.7), (near, 0.0, short * 0.16, 0.95)]
        if "fog" in self.kinds:
            field = _noise_field(width * 2, height, rng)
            ramp = np.linspace(0.55, 1.0, height, dtype=np.float32)[:, None]
            self.fog = field * ramp
            self.fog_speed = short * 0.06

    def __call__(self, rgb: np.ndarray, index: int) -> np.ndarray:
        out = rgb.astype(np.float32)
        t = index / self.fps
        w, h = self.width, self.height
        if "fog" in self.kinds:
            density = _window(self.fog, self.fog_speed * t, 0.0, w, h)
            amount = (0.25 + 0.45 * density)[..., None]
            out = out * (1.0 - amount) + np.array([205, 210, 215], np.float32) * amount
        if "rain" in self.kinds:
            out *= np.array([0.9, 0.93, 0.98], np.float32)  # overcast, cooler
            for layer, vx, vy, strength in self.layers["rain"]:
                streak = _window(layer, -vx * t, -vy * t, w, h)[..., None]
                out += (215.0 - out) * np.clip(streak * strength, 0.0, 1.0)
        if "snow" in self.kinds:
            for k, (layer, _, vy, strength) in enumerate(self.layers["snow"]):
                sway = math.sin(t * (0.7 + 0.4 * k) + k) * min(w, h) * 0.02
                flake = _window(layer, sway, -vy * t, w, h)[..., None]
                out += (250.0 - out) * np.clip(flake * strength, 0.0, 1.0)
        return np.clip(out, 0, 255).astype(np.uint8)
