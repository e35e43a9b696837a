"""Compositing for video_to_video: new backgrounds behind people, objects into scenes.

``Backdrop`` makes what goes behind the person (a blur of the frame itself, a colour, a
vertical gradient or a reference image covering the frame) and ``Backdrop.apply(rgb,
mask)`` lays the person (mask 1) over it. ``Sticker`` is a reference image placed where
the prompt says (nine anchor positions, a size as a fraction of the frame height),
keyed out of a plain border colour when it has no transparency of its own, with a soft
shadow; it fades in over the first half second and floats very slightly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .prompt import COLOURS, RGB

PLACEMENT_XY = {
    "top_left": (0.18, 0.2), "top": (0.5, 0.18), "top_right": (0.82, 0.2),
    "left": (0.18, 0.55), "center": (0.5, 0.55), "right": (0.82, 0.55),
    "bottom_left": (0.2, 0.8), "bottom": (0.5, 0.8), "bottom_right": (0.8, 0.8),
}


def parse_colour(value: str | RGB | None, default: RGB = (40, 170, 70)) -> RGB:
    if value is None:
        return default
    if isinstance(value, tuple):
        return value
    text = value.strip().lower()
    if text.startswith("#") and len(text) == 7:
        return (int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16))
    return COLOURS.get(text, default)


def cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` scaled and centre-cropped to fill width x height."""
    h, w = image.shape[:2]
    k = max(width / w, height / h)
    size = (max(width, round(w * k)), max(height, round(h * k)))
    big = cv2.resize(image, size, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)
    x, y = (size[0] - width) // 2, (size[1] - height) // 2
    return np.ascontiguousarray(big[y:y + height, x:x + width])


@dataclass
class Backdrop:
    kind: str  # blur | color | gradient | image
    width: int
    height: int
    colour: RGB = (40, 170, 70)
    image: np.ndarray | None = None

    def __post_init__(self) -> None:
        self._static: np.ndarray | None = None
        if self.kind == "color":
            self._static = np.full((self.height, self.width, 3), self.colour, np.float32)
        elif self.kind == "gradient":
            top = np.array(self.colour, np.float32)
            bottom = top * 0.35 + np.array([10, 10, 25], np.float32)
            t = np.linspace(0.0, 1.0, self.height, dtype=np.float32)[:, None, None]
            self._static = np.broadcast_to(top * (1 - t) + bottom * t,
                                           (self.height, self.width, 3)).copy()
        elif self.kind == "image" and self.image is not None:
            self._static = cover(self.image, self.width, self.height).astype(np.float32)

    def behind(self, rgb: np.ndarray) -> np.ndarray:
        if self._static is not None:
            return self._static
        small = cv2.resize(rgb, (max(2, self.width // 4), max(2, self.height // 4)),
                           interpolation=cv2.INTER_AREA)
        sigma = max(2.0, min(self.width, self.height) / 4 / 40)
        small = cv2.GaussianBlur(small, (0, 0), sigma)
        return cv2.resize(small, (self.width, self.height),
                          interpolation=cv2.INTER_LINEAR).astype(np.float32)

    def apply(self, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        m = mask[..., None]
        out = rgb.astype(np.float32) * m + self.behind(rgb) * (1.0 - m)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def key_out_border(rgba: np.ndarray) -> np.ndarray:
    """Give an opaque image transparency where it matches its (uniform) border colour;
    an image whose border is not uniform is kept whole, with rounded corners."""
    rgb = rgba[..., :3].astype(np.float32)
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    colour = np.median(border, axis=0)
    spread = float(np.percentile(np.abs(border - colour).max(axis=1), 90))
    alpha = rgba[..., 3].astype(np.float32) / 255.0
    if spread < 18:
        dist = np.abs(rgb - colour).max(axis=2)
        alpha = np.minimum(alpha, np.clip((dist - 18) / 30, 0.0, 1.0))
    else:
        h, w = alpha.shape
        r = max(2, min(h, w) // 12)
        corners = np.ones((h, w), np.uint8)
        cv2.rectangle(corners, (0, 0), (w - 1, h - 1), 0, r)
        mask = np.zeros((h, w), np.uint8)
        cv2.rectangle(mask, (r, 0), (w - 1 - r, h - 1), 255, -1)
        cv2.rectangle(mask, (0, r), (w - 1, h - 1 - r), 255, -1)
        for cx, cy in ((r, r), (w - 1 - r, r), (r, h - 1 - r), (w - 1 - r, h - 1 - r)):
            cv2.circle(mask, (cx, cy), r, 255, -1, cv2.LINE_AA)
        alpha = np.minimum(alpha, mask.astype(np.float32) / 255.0)
    out = rgba.copy()
    out[..., 3] = np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)
    return out


class Sticker:
    """A reference image composited into each frame at a placement."""

    def __init__(self, rgba: np.ndarray, width: int, height: int, fps: float, *,
                 placement: str = "center", size: float = 0.3) -> None:
        rgba = key_out_border(rgba) if rgba[..., 3].min() == 255 else rgba
        h, w = rgba.shape[:2]
        target_h = max(4, int(height * size))
        target_w = max(4, int(w * target_h / h))
        if target_w > width * 0.9:
            target_w = int(width * 0.9)
            target_h = max(4, int(h * target_w / w))
        img = cv2.resize(rgba, (target_w, target_h), interpolation=cv2.INTER_AREA)
        self.rgb = img[..., :3].astype(np.float32)
        self.alpha = img[..., 3].astype(np.float32)[..., None] / 255.0
        blur = max(1.5, target_h / 25)
        self.shadow = cv2.GaussianBlur(self.alpha[..., 0], (0, 0), blur)[..., None] * 0.45
        fx, fy = PLACEMENT_XY.get(placement, PLACEMENT_XY["center"])
        self.x = int(min(max(0, fx * width - target_w / 2), width - target_w))
        self.y = int(min(max(0, fy * height - target_h / 2), height - target_h))
        self.offset = max(1, target_h // 30)
        self.fps, self.width, self.height = fps, width, height
        self.bob = max(0.5, height * 0.004)

    def __call__(self, rgb: np.ndarray, index: int) -> np.ndarray:
        t = index / self.fps
        fade = min(1.0, t / 0.5)
        dy = int(round(self.bob * math.sin(2 * math.pi * 0.35 * t)))
        out = rgb.copy()
        h, w = self.alpha.shape[:2]
        for layer, (ox, oy), colour in ((self.shadow, (self.offset, self.offset), None),
                                        (self.alpha, (0, 0), self.rgb)):
            x, y = self.x + ox, min(max(0, self.y + oy + dy), self.height - h)
            x = min(x, self.width - w)
            region = out[y:y + h, x:x + w].astype(np.float32)
            a = layer * fade
            paint = np.zeros_like(region) if colour is None else colour
            out[y:y + h, x:x + w] = np.clip(region * (1 - a) + paint * a + 0.5, 0,
                                            255).astype(np.uint8)
        return out
