"""Classic (non-neural) restyling of video frames, built not to flicker.

Six styles: cartoon, sketch, watercolor, oil_paint, noir, comic. Per-frame filters
flicker on video because small changes (sensor noise, compression) flip thresholds and
palette choices from one frame to the next. Three things keep these stable:

* every parameter that depends on the picture (the colour palette, levels) is chosen
  once, from the first frame, and kept for the whole clip;
* a temporal smoother calms the input where it barely changes (noise) and passes real
  motion through untouched, so hard decisions are made on steady values;
* edge maps are averaged over time (an exponential moving average);
* textures (paper, canvas, halftone screens) are fixed to the frame, seeded.

``Stylizer(kind, width, height, seed)(rgb) -> rgb`` processes one frame (uint8 RGB).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ..errors import Invalid
from .prompt import RESTYLES

DESCRIPTIONS = {
    "cartoon": "Flat colour regions from a fixed palette with clean dark outlines",
    "sketch": "Pencil drawing on paper: dodge-blended graphite lines and shading",
    "watercolor": "Soft washes of colour bleeding into each other on textured paper",
    "oil_paint": "Thick, blended brushwork on a canvas weave",
    "noir": "High-contrast black and white with deep shadows and a vignette",
    "comic": "Posterised inks, bold outlines and a halftone dot screen",
}


GRAPHITE = np.array([50, 52, 60], np.float32)  # the sketch's darkest line colour


class TemporalSmoother:
    """Average each pixel with its past while it stays within ``tau`` of it (noise);
    let it change at once when it moves further (motion)."""

    def __init__(self, tau: int = 14, alpha: float = 0.35) -> None:
        self.tau, self.alpha = tau, alpha
        self.prev: np.ndarray | None = None

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        if self.prev is None or self.prev.shape != rgb.shape:
            self.prev = rgb.copy()
            return self.prev
        # calm: every channel within tau of the past (one SIMD pass, not a max over axes)
        calm = cv2.inRange(cv2.absdiff(rgb, self.prev), (0, 0, 0), (self.tau - 1,) * 3)
        blended = cv2.addWeighted(self.prev, 1.0 - self.alpha, rgb, self.alpha, 0.0)
        out = rgb.copy()
        cv2.copyTo(blended, calm, out)
        self.prev = out
        return out


class EdgeMemory:
    """Exponential moving average of an edge map (float32 0..1)."""

    def __init__(self, keep: float = 0.55) -> None:
        self.keep = keep
        self.state: np.ndarray | None = None

    def __call__(self, edges: np.ndarray) -> np.ndarray:
        if self.state is None or self.state.shape != edges.shape:
            self.state = edges.astype(np.float32)
        else:
            cv2.addWeighted(self.state, self.keep, edges.astype(np.float32),
                            1.0 - self.keep, 0.0, dst=self.state)
        return self.state


def _palette_lut(rgb: np.ndarray, colours: int, seed: int) -> np.ndarray:
    """k-means palette of ``rgb`` and a 32^3 table: quantised RGB -> palette colour."""
    sample = cv2.resize(rgb, (96, max(8, 96 * rgb.shape[0] // rgb.shape[1])),
                        interpolation=cv2.INTER_AREA).reshape(-1, 3).astype(np.float32)
    cv2.setRNGSeed(seed)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    k = min(colours, len(sample))
    _, _, centres = cv2.kmeans(sample, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    grid = (np.arange(32, dtype=np.float32) * 8 + 4)
    cube = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), axis=-1).reshape(-1, 3)
    nearest = np.argmin(((cube[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2), axis=1)
    return np.clip(centres[nearest], 0, 255).astype(np.uint8).reshape(32, 32, 32, 3)


def _apply_palette(rgb: np.ndarray, packed: np.ndarray) -> np.ndarray:
    """Each pixel's palette colour, ``lut[r >> 3, g >> 3, b >> 3]`` for the table
    ``packed`` by ``_packed``: one flat index, one 1-D take (several times faster than
    indexing three axes)."""
    r, g, b = cv2.split(rgb)
    index = (r >> 3).astype(np.int32) << 10
    index |= (g >> 3).astype(np.int32) << 5
    index |= b >> 3
    rgba = np.take(packed, index).view(np.uint8).reshape(*rgb.shape[:2], 4)
    return cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)


def _packed(lut: np.ndarray) -> np.ndarray:
    """The (32, 32, 32, 3) table as 32768 uint32 words, RGBX bytes in memory order."""
    flat = np.zeros((32 * 32 * 32, 4), np.uint8)
    flat[:, :3] = lut.reshape(-1, 3)
    return flat.view(np.uint32).reshape(-1)


def _texture(width: int, height: int, seed: int, scale: float, strength: float) -> np.ndarray:
    """A fixed multiplicative texture (float32 around 1.0, one channel): paper or
    canvas grain."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((height, width)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), scale)
    noise /= max(1e-6, float(noise.std()))
    return 1.0 + strength * noise


def _three(plane: np.ndarray) -> np.ndarray:
    """A one-channel float32 image repeated in three channels. Per-pixel weights are
    multiplied in at full shape: numpy's broadcast of (h, w, 3) by (h, w, 1) is about
    ten times slower than an elementwise product."""
    plane = plane.astype(np.float32, copy=False)
    return cv2.merge([plane, plane, plane])


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """float32 colour to uint8: clipped to 0..255 (in place), then truncated."""
    return np.clip(values, 0, 255, out=values).astype(np.uint8)


def _smooth_colour(rgb: np.ndarray, passes: int, sigma_colour: float) -> np.ndarray:
    """Edge-preserving smoothing at half size (fast), back to full size."""
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (max(2, w // 2), max(2, h // 2)), interpolation=cv2.INTER_AREA)
    for _ in range(passes):
        small = cv2.bilateralFilter(small, 7, sigma_colour, 5)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _edges(rgb: np.ndarray, block: int, c: float) -> np.ndarray:
    """Dark-line mask (1 = line) from adaptive thresholding of the blurred luma."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    gray = cv2.medianBlur(gray, 5)
    lines = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY,
                                  block | 1, c)
    return (255 - lines).astype(np.float32) / 255.0


class Stylizer:
    def __init__(self, kind: str, width: int, height: int, seed: int = 0) -> None:
        if kind not in RESTYLES:
            raise Invalid(f"unknown restyle {kind!r}", fix=f"Use one of: {', '.join(RESTYLES)}.")
        self.kind, self.width, self.height, self.seed = kind, width, height, seed
        self.smoother = TemporalSmoother()
        self.edges = EdgeMemory()
        self.lut: np.ndarray | None = None  # the palette, packed (see _apply_palette)
        short = min(width, height)
        self.block = max(7, int(short / 60) | 1)
        self._run: Callable[[np.ndarray], np.ndarray] = getattr(self, f"_{kind}")
        grain = 0.045 if kind == "watercolor" else 0.03
        self.paper = _three(_texture(width, height, seed, max(1.5, short / 250), grain))
        self.canvas = self._canvas() if kind == "oil_paint" else None
        self.screen = self._halftone() if kind == "comic" else None
        self.vignette = None
        # sketch: the paper's colour above the graphite's, per pixel
        self.sketch_span = (np.array([250, 246, 236], np.float32) * self.paper - GRAPHITE
                            if kind == "sketch" else None)
        if kind == "noir":
            from .looks import vignette_mask

            self.vignette = vignette_mask(width, height, 0.5)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return self._run(self.smoother(rgb))

    def _palette(self, rgb: np.ndarray, colours: int) -> np.ndarray:
        if self.lut is None:  # chosen once, from the first frame: no palette flicker
            self.lut = _packed(_palette_lut(rgb, colours, self.seed))
        return _apply_palette(rgb, self.lut)

    def _canvas(self) -> np.ndarray:
        ys, xs = np.mgrid[0:self.height, 0:self.width].astype(np.float32)
        period = max(3.0, min(self.width, self.height) / 180)
        weave = np.sin(xs * 2 * np.pi / period) * np.sin(ys * 2 * np.pi / period)
        return _three((1.0 + 0.035 * weave) * _texture(self.width, self.height,
                                                       self.seed + 1, 1.5, 0.03))

    def _halftone(self) -> np.ndarray:
        ys, xs = np.mgrid[0:self.height, 0:self.width].astype(np.float32)
        period = max(4.0, min(self.width, self.height) / 110)
        c, s = np.cos(np.pi / 4), np.sin(np.pi / 4)
        u, v = (xs * c + ys * s) * 2 * np.pi / period, (-xs * s + ys * c) * 2 * np.pi / period
        return (0.5 + 0.25 * (np.cos(u) + np.cos(v))).astype(np.float32)  # 0..1 dot screen

    # -------------------------------------------------------------- the styles

    def _cartoon(self, rgb: np.ndarray) -> np.ndarray:
        smooth = _smooth_colour(rgb, 2, 45)
        flat = self._palette(smooth, 14)
        # 3/4 palette, 1/4 smoothed colour, a little more contrast (x 1.06 - 6)
        colour = cv2.addWeighted(flat, 0.75 * 1.06, smooth, 0.25 * 1.06, -6.0,
                                 dtype=cv2.CV_32F)
        lines = self.edges(_edges(rgb, self.block, 4))
        return _to_uint8(colour * _three(1.0 - 0.85 * lines))

    def _sketch(self, rgb: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        sigma = max(2.0, min(self.width, self.height) / 90)
        blur = cv2.GaussianBlur(255 - gray, (0, 0), sigma)
        dodge = cv2.divide(gray, 255 - blur, scale=256)
        lines = self.edges(1.0 - dodge.astype(np.float32) / 255.0)
        tone = 1.0 - np.clip(lines * 1.6, 0.0, 1.0)
        shade = cv2.GaussianBlur(gray, (0, 0), sigma * 2).astype(np.float32) / 255.0
        value = tone * (0.82 + 0.18 * shade)
        assert self.sketch_span is not None
        out = self.sketch_span * _three(value)
        out += GRAPHITE
        return _to_uint8(out)

    def _watercolor(self, rgb: np.ndarray) -> np.ndarray:
        smooth = _smooth_colour(rgb, 3, 60)
        flat = self._palette(smooth, 20)
        wash = cv2.addWeighted(flat, 0.55, smooth, 0.45, 0.0)
        h, w = wash.shape[:2]
        bleed = cv2.GaussianBlur(wash, (0, 0), max(1.5, min(w, h) / 240))
        lines = self.edges(_edges(rgb, self.block * 2 + 1, 6))
        colour = bleed.astype(np.float32) * _three(1.0 - 0.25 * lines)
        colour *= 0.85  # lighter, like pigment on paper: 255 - (255 - c) * 0.85
        colour += 255.0 * 0.15
        colour *= self.paper
        return _to_uint8(colour)

    def _oil_paint(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        small = cv2.resize(rgb, (max(2, w // 2), max(2, h // 2)), interpolation=cv2.INTER_AREA)
        small = cv2.bilateralFilter(small, 7, 40, 5)
        small = cv2.medianBlur(small, 3)
        paint = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        paint = cv2.addWeighted(self._palette(paint, 24), 0.4, paint, 0.6, 0.0)
        soft = cv2.GaussianBlur(paint, (0, 0), 2.0)
        sharp = cv2.addWeighted(paint, 1.5, soft, -0.5, 0.0)  # crisp brush edges
        hsv = cv2.cvtColor(sharp, cv2.COLOR_RGB2HSV)
        hsv[..., 1] = cv2.multiply(hsv[..., 1], 1.15)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32)
        assert self.canvas is not None
        out *= self.canvas
        return _to_uint8(out)

    def _noir(self, rgb: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        s = gray * gray * (3.0 - 2.0 * gray)
        tone = np.clip((0.35 * gray + 0.65 * s - 0.06) / 0.94, 0.0, 1.0) ** 1.15
        assert self.vignette is not None
        lit = (tone * self.vignette).astype(np.float32)
        return _to_uint8(cv2.merge([lit * 250.0, lit * 250.0, lit * 255.0]))

    def _comic(self, rgb: np.ndarray) -> np.ndarray:
        smooth = _smooth_colour(rgb, 2, 50)
        flat = self._palette(smooth, 8).astype(np.float32)
        hsv = cv2.cvtColor(flat.astype(np.uint8), cv2.COLOR_RGB2HSV)
        hsv[..., 1] = cv2.multiply(hsv[..., 1], 1.35)
        flat = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32)
        luma = cv2.transform(flat, np.full((1, 3), 1.0 / (3 * 255.0), np.float32))
        assert self.screen is not None
        dots = ((luma < 0.62) & (self.screen > luma + 0.25)).astype(np.float32)
        lines = self.edges(_edges(rgb, self.block, 3))
        ink = np.clip(cv2.dilate(lines, np.ones((2, 2), np.uint8)) * 1.2, 0.0, 1.0)
        flat *= _three((1.0 - 0.35 * dots) * (1.0 - 0.95 * ink))
        return _to_uint8(flat)
