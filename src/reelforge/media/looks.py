"""The eight looks (styles): a colour grade plus per-frame lens and film effects.

A still image needs its grade computed once: ``grade(rgb, look)`` applies the static
part (white balance, exposure, tone curve, lift/fade, saturation, split toning, glow)
to the source with numpy/OpenCV. What belongs to the frame rather than the picture,
and so must be applied per output frame, is described here too and applied by the
renderer: ``vignette`` (a lens darkens the frame's corners, whatever the camera does),
``grain`` (film grain changes every frame) and ``shake`` (handheld wobble).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from ..errors import Invalid

RGB = tuple[float, float, float]
_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)  # BT.709


@dataclass(frozen=True)
class Look:
    name: str
    description: str
    exposure: float = 0.0  # stops
    white_balance: RGB = (1.0, 1.0, 1.0)  # per-channel gain
    gamma: float = 1.0  # < 1 brightens the mid-tones
    contrast: float = 0.0  # S-curve around mid-grey; negative flattens
    lift: float = 0.0  # > 0 fades the blacks up, < 0 crushes them
    white: float = 1.0  # where pure white lands (< 1: faded highlights)
    saturation: float = 1.0
    shadow_tint: RGB = (0.0, 0.0, 0.0)  # added to the shadows (split toning)
    highlight_tint: RGB = (0.0, 0.0, 0.0)  # added to the highlights
    glow: float = 0.0  # bloom of the highlights, 0..1
    vignette: float = 0.0  # per frame: corner darkening, 0..1
    grain: float = 0.0  # per frame: luma noise, std in 8-bit code values
    shake: float = 0.0  # per frame: handheld wobble, fraction of the frame height
    letterbox: float | None = None  # picture aspect when letterboxed (landscape only)


LOOKS: dict[str, Look] = {look.name: look for look in (
    Look("cinematic", "Teal-and-orange grade, gentle contrast, soft vignette, fine grain, "
         "2.39:1 letterbox on landscape frames",
         contrast=0.3, lift=0.01, saturation=1.08,
         shadow_tint=(-0.055, 0.015, 0.06), highlight_tint=(0.08, 0.025, -0.06),
         vignette=0.22, grain=1.6, letterbox=2.39),
    Look("dramatic", "Hard contrast, crushed blacks, cool muted colour, heavy vignette",
         exposure=-0.15, contrast=0.6, lift=-0.05, saturation=0.82,
         shadow_tint=(-0.01, 0.0, 0.025), highlight_tint=(0.01, 0.005, -0.005),
         vignette=0.5, grain=2.0),
    Look("dreamy", "Soft highlight glow, lifted pastel tones, warm and bright",
         exposure=0.22, white_balance=(1.04, 1.0, 0.97), contrast=-0.2, lift=0.06,
         saturation=0.88, highlight_tint=(0.025, 0.0, 0.02), shadow_tint=(0.015, 0.0, 0.03),
         glow=0.5),
    Look("energetic", "Punchy saturation and contrast with a slight handheld shake",
         exposure=0.05, contrast=0.32, saturation=1.32, vignette=0.08, shake=0.0035),
    Look("minimal", "Clean, airy and slightly desaturated, cool-neutral",
         exposure=0.12, white_balance=(0.99, 1.0, 1.02), contrast=-0.06, lift=0.02,
         saturation=0.78),
    Look("vintage", "Faded blacks, warm cast, muted colour, film grain and vignette",
         white_balance=(1.08, 1.0, 0.84), contrast=0.12, lift=0.09, white=0.93,
         saturation=0.72, shadow_tint=(0.015, 0.01, -0.01), highlight_tint=(0.02, 0.01, -0.02),
         vignette=0.42, grain=5.5),
    Look("corporate", "Bright, neutral and clean",
         exposure=0.16, gamma=0.94, contrast=0.08, saturation=1.04),
    Look("luxury", "Warm gold highlights, deep rich shadows, subtle glow",
         white_balance=(1.06, 1.01, 0.9), contrast=0.38, lift=-0.035, saturation=0.92,
         shadow_tint=(0.01, 0.0, -0.005), highlight_tint=(0.05, 0.03, -0.04),
         glow=0.12, vignette=0.3),
)}
LOOK_DESCRIPTIONS = {name: look.description for name, look in LOOKS.items()}


def get_look(name: str) -> Look:
    try:
        return LOOKS[name]
    except KeyError:
        raise Invalid(f"unknown style {name!r}",
                      fix=f"Use one of: {', '.join(LOOKS)}.") from None


def tone_lut(look: Look) -> np.ndarray:
    """The per-channel tone curve as a (256, 3) float32 table, 8-bit in, 0..1 out."""
    x = np.linspace(0.0, 1.0, 256, dtype=np.float64)[:, None]
    gain = np.asarray(look.white_balance, dtype=np.float64)[None, :] * 2.0 ** look.exposure
    y = np.clip(x * gain, 0.0, 1.0) ** look.gamma
    c = look.contrast
    s_curve = y * y * (3.0 - 2.0 * y)
    y = y + c * (s_curve - y) if c >= 0 else y + c * (s_curve - y) * 0.8
    if look.lift < 0:  # crush: the darkest tones go to black
        y = np.clip((y + look.lift) / (1.0 + look.lift), 0.0, 1.0)
    black = max(look.lift, 0.0)  # fade: black lands at `lift`, white at `white`
    y = black + (look.white - black) * y
    return np.clip(y, 0.0, 1.0).astype(np.float32)


def grade(rgb: np.ndarray, look: Look) -> np.ndarray:
    """Apply the look's static grade to an RGB uint8 image (H, W, 3); returns uint8.

    The per-pixel part is ``_grade_pixels``, run on a few rows at a time (a tile's
    float copies stay in the core's cache; a whole picture's would go through memory,
    1.8x slower). Two threads take the tiles in turn (OpenCV lets go of the GIL); one
    first makes the glow's layer, which needs the whole picture (``_glow_layer``),
    then screen-blends it over the result: 1 - (1 - graded)(1 - glow)."""
    h, w = rgb.shape[:2]
    out = np.empty_like(rgb)
    rows = max(1, _TILE_PIXELS // max(1, w))
    tiles = iter(range(0, h, rows))  # shared: each row range is taken by one thread

    def grade_tiles() -> None:
        for y in tiles:
            _grade_pixels(rgb[y:y + rows], look, out[y:y + rows])

    def helper() -> np.ndarray | None:
        dim = _glow_layer(rgb, look) if look.glow > 0 else None
        grade_tiles()
        return dim

    with ThreadPoolExecutor(1) as pool:
        helped = pool.submit(helper) if h * w >= _TWO_THREAD_PIXELS or look.glow > 0 else None
        grade_tiles()
        dim = helped.result() if helped is not None else None
    if dim is not None:
        cv2.bitwise_not(out, dst=out)  # 255 (1 - graded)
        cv2.multiply(out, dim, dst=out, scale=1.0 / 255.0)
        cv2.bitwise_not(out, dst=out)
    return out


_TWO_THREAD_PIXELS = 1 << 18  # images this large are graded on two threads
_TILE_PIXELS = 1 << 16  # pixels graded at a time


def _grade_pixels(rgb: np.ndarray, look: Look, dst: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The look's grade without the glow, into ``dst`` (uint8), and the luma after the
    tone curve (float32, 0..1). Each step is one OpenCV pass: the tone curve as a table
    lookup, saturation as a 3x3 colour matrix (it keeps the luma), split toning as a
    table indexed by the luma's 8-bit code (the tint moves smoothly with the luma, so
    256 steps are exact to a tenth of a code value), then x 255, rounded and clipped
    to 0..255 in one pass."""
    tone, saturation, tint = _grade_tables(look)
    out = cv2.LUT(rgb, tone)  # float32, 0..1
    luma = cv2.transform(out, _LUMA[None, :])
    if saturation is not None:
        out = cv2.transform(out, saturation)
    if tint is not None:
        code = cv2.convertScaleAbs(luma, alpha=255.0)  # luma is >= 0 here
        cv2.add(out, cv2.LUT(cv2.merge([code, code, code]), tint), dst=out)
    graded = cv2.multiply(out, (255.0, 255.0, 255.0, 255.0), dst=dst, dtype=cv2.CV_8U)
    return graded, luma


@lru_cache(maxsize=16)
def _grade_tables(look: Look) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """What ``_grade_pixels`` applies, made once per look: the tone curve as a (256, 1,
    3) table, the saturation's colour matrix and the split toning's table (None when
    the look leaves that step out). Read-only."""
    tone = tone_lut(look).reshape(256, 1, 3)
    s = look.saturation
    saturation = (s * np.eye(3, dtype=np.float32)
                  + (1.0 - s) * np.outer(np.ones(3, np.float32), _LUMA) if s != 1.0 else None)
    tint = (_split_tone_table(look) if any(look.shadow_tint) or any(look.highlight_tint)
            else None)
    for table in (tone, saturation, tint):
        if table is not None:
            table.flags.writeable = False
    return tone, saturation, tint


def _split_tone_table(look: Look) -> np.ndarray:
    """What split toning adds, by luma code: the shadow tint fading out as (1 - l)^2,
    the highlight tint fading in as l^2. (256, 1, 3) float32."""
    lum = np.linspace(0.0, 1.0, 256, dtype=np.float32)[:, None]
    table = (np.asarray(look.shadow_tint, np.float32) * (1.0 - lum) ** 2
             + np.asarray(look.highlight_tint, np.float32) * lum ** 2)
    return table.reshape(256, 1, 3)


GLOW_SIDE = 416  # the glow is made at about this size (long side), see _glow_layer


def _glow_layer(rgb: np.ndarray, look: Look) -> np.ndarray:
    """255 (1 - glow) at the size of ``rgb`` (uint8): a wide blur of the graded
    highlights (the part of the picture above mid-grey luma), times the look's
    strength. The blur is wide, so the highlights are graded and blurred at about
    ``GLOW_SIDE`` pixels on the long side: the graded picture is then within a code
    value or two of one with the glow made at full size (at most 5, on the
    astronaut's white suit)."""
    h, w = rgb.shape[:2]
    k = max(1, max(h, w) // GLOW_SIDE)
    small = (w // k, h // k)  # a whole 1/k of the pixels up to k - 1 rows and
    # columns: OpenCV's fast path (a fraction more takes three times as long)
    shrunk = cv2.resize(rgb[:small[1] * k, :small[0] * k], small, interpolation=cv2.INTER_AREA)
    graded, luma = _grade_pixels(shrunk, look)
    mask = cv2.convertScaleAbs(np.maximum(luma - 0.5, 0.0), alpha=510.0)  # 0.5..1 -> 0..255
    bright = cv2.multiply(graded, cv2.merge([mask, mask, mask]), scale=1.0 / 255.0,
                          dtype=cv2.CV_32F)
    sigma = 0.015 * (small[0] ** 2 + small[1] ** 2) ** 0.5
    dim = 255.0 - look.glow * cv2.GaussianBlur(bright, (0, 0), sigma)
    return cv2.resize(cv2.convertScaleAbs(dim), (w, h), interpolation=cv2.INTER_LINEAR)


def vignette_mask(width: int, height: int, strength: float) -> np.ndarray:
    """Per-pixel gain (float32, 1 at the centre, 1 - strength in the corners)."""
    xs = (np.arange(width, dtype=np.float32) + 0.5) / width * 2.0 - 1.0
    ys = (np.arange(height, dtype=np.float32) + 0.5) / height * 2.0 - 1.0
    d2 = (xs[None, :] ** 2 + ys[:, None] ** 2) / 2.0  # 0 centre .. 1 corners
    falloff = np.clip((np.sqrt(d2) - 0.3) / 0.7, 0.0, 1.0)
    falloff = falloff * falloff * (3.0 - 2.0 * falloff)
    return (1.0 - strength * falloff).astype(np.float32)


@lru_cache(maxsize=8)
def vignette_yuv(width: int, height: int, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """The vignette as two flat yuv420p frames of ``width`` x ``height``, (gain, offset),
    for ``pixel * gain / 255 + offset`` on every plane: luma darkens towards black (16)
    and chroma towards neutral (128), as a Y'CbCr vignette should. Cached per size
    (a reel's images share them); read-only."""
    planes = []
    for k, (w, h) in enumerate(((width, height), (width // 2, height // 2),
                                (width // 2, height // 2))):
        gain = vignette_mask(w, h, strength)
        zero = 16.0 if k == 0 else 128.0
        planes.append((np.rint(gain * 255).astype(np.uint8).reshape(-1),
                       np.rint(zero * (1.0 - gain)).astype(np.uint8).reshape(-1)))
    gain = np.concatenate([g for g, _ in planes])
    offset = np.concatenate([o for _, o in planes])
    gain.flags.writeable = offset.flags.writeable = False
    return gain, offset


class Grain:
    """Film grain for frames of ``width`` x ``height``: one seeded noise field, a
    different window of it each frame. ``apply(y_plane, i)`` adds it in place with
    saturating uint8 arithmetic (fast, deterministic for a seed)."""

    MARGIN = 48

    def __init__(self, width: int, height: int, strength: float, seed: int) -> None:
        self.width, self.height = width, height
        m = self.MARGIN
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal((height + 2 * m, width + 2 * m), dtype=np.float32)
        # Film grain is soft, not per-pixel; keep its size in proportion to the frame.
        noise = cv2.GaussianBlur(noise, (0, 0), 0.7 * max(1.0, min(width, height) / 720))
        noise *= strength / max(1e-6, float(noise.std()))
        noise = np.rint(noise)
        self._pos = np.clip(noise, 0, 255).astype(np.uint8)
        self._neg = np.clip(-noise, 0, 255).astype(np.uint8)
        self._offsets = rng.integers(0, 2 * m, size=(4096, 2))

    def apply(self, y_plane: np.ndarray, index: int) -> None:
        ox, oy = self._offsets[index % len(self._offsets)]
        h, w = y_plane.shape
        cv2.add(y_plane, self._pos[oy:oy + h, ox:ox + w], dst=y_plane)
        cv2.subtract(y_plane, self._neg[oy:oy + h, ox:ox + w], dst=y_plane)


# ---------------------------------------------------------------- relighting
# Relights are grades too: a change of light colour, level and contrast over the whole
# frame (a CPU engine cannot move the light source). Chosen by prompt words.
RELIGHTS: dict[str, Look] = {look.name: look for look in (
    Look("warm", "Warm, low tungsten-like light",
         exposure=0.05, white_balance=(1.1, 1.0, 0.84), contrast=0.12, saturation=1.05,
         highlight_tint=(0.03, 0.012, -0.03), vignette=0.15),
    Look("cool", "Cool, clean daylight-blue light",
         white_balance=(0.88, 0.98, 1.12), contrast=0.1, saturation=0.95,
         shadow_tint=(-0.02, 0.0, 0.03), vignette=0.1),
    Look("golden_hour", "Low golden sun: warm highlights, soft glow, amber shadows",
         exposure=0.1, white_balance=(1.16, 1.0, 0.74), contrast=0.16, lift=0.02,
         saturation=1.12, shadow_tint=(0.03, 0.005, -0.03), highlight_tint=(0.07, 0.035, -0.05),
         glow=0.25, vignette=0.2),
    Look("night", "Moonlit night: dark, blue, low saturation, lifted deep blues",
         exposure=-1.0, gamma=1.1, white_balance=(0.75, 0.9, 1.25), contrast=0.2, lift=0.015,
         saturation=0.55, shadow_tint=(-0.01, 0.0, 0.04), highlight_tint=(-0.02, 0.0, 0.03),
         vignette=0.45),
    Look("moody", "Low-key and moody: deep shadows, muted colour, heavy vignette",
         exposure=-0.3, contrast=0.45, lift=-0.03, saturation=0.7,
         shadow_tint=(-0.01, 0.005, 0.02), highlight_tint=(0.015, 0.01, -0.01), vignette=0.55),
)}


def lattice_lut(look: Look, size: int = 33) -> np.ndarray:
    """The look's colour grade (glow left out: it is not per-pixel) sampled on an
    RGB lattice: (size, size, size, 3) float32 in 0..1, indexed [r][g][b]."""
    from dataclasses import replace

    steps = np.round(np.linspace(0, 255, size)).astype(np.uint8)
    r, g, b = np.meshgrid(steps, steps, steps, indexing="ij")
    lattice = np.stack([r, g, b], axis=-1).reshape(size * size, size, 3)
    graded = grade(np.ascontiguousarray(lattice), replace(look, glow=0.0))
    return graded.reshape(size, size, size, 3).astype(np.float32) / 255.0


def write_cube(path: Any, look: Look, size: int = 33) -> Any:
    """Save the look as an Adobe/Resolve ``.cube`` 3D LUT (for ffmpeg's lut3d)."""
    lut = lattice_lut(look, size)
    # .cube order: red changes fastest, then green, then blue.
    rows = lut.transpose(2, 1, 0, 3).reshape(-1, 3)
    body = "\n".join(f"{r:.6f} {g:.6f} {b:.6f}" for r, g, b in rows)
    with open(path, "w", encoding="ascii") as f:
        f.write(f'TITLE "{look.name}"\nLUT_3D_SIZE {size}\n'
                "DOMAIN_MIN 0.0 0.0 0.0\nDOMAIN_MAX 1.0 1.0 1.0\n")
        f.write(body + "\n")
    return path


def yuv_grade_filters(look: Look, knots: int = 17) -> list[str]:
    """The look's grade (glow left out) as two cheap ffmpeg filters that work on
    yuv420p directly, ~20 times faster than a 3D LUT with its RGB round trip:

    * ``lutyuv`` maps luma through the grade's tone curve, taken from graded greys and
      written as a piecewise-linear expression through ``knots`` points;
    * ``colorcorrect`` adds the grade's colour cast, which the graded greys show moving
      linearly from the shadows to the highlights (split toning, white balance), and
      scales colour by the look's saturation.

    It is an approximation of ``grade`` (exact on greys, close on colours); the frame
    pipe, which works in RGB anyway, applies the exact grade as a 3D LUT."""
    from dataclasses import replace

    from .render import RGB_TO_YUV

    codes = np.arange(256, dtype=np.float32)
    grey = np.clip((codes - 16.0) * 255.0 / 219.0, 0, 255)
    ramp = np.repeat(np.rint(grey).astype(np.uint8)[None, :, None], 3, axis=2)
    graded = grade(ramp, replace(look, glow=0.0)).astype(np.float32)
    yuv = cv2.transform(graded, RGB_TO_YUV)[0]  # (256, 3): Y, Cb, Cr, limited range
    xs = np.linspace(0, 255, knots)
    ys = np.interp(xs, codes, yuv[:, 0])
    terms = [f"{ys[0]:.3f}"]
    for k in range(knots - 1):
        slope = (ys[k + 1] - ys[k]) / (xs[k + 1] - xs[k])
        terms.append(f"{slope:.5f}*clip(val-{xs[k]:.3f},0,{xs[k + 1] - xs[k]:.3f})")
    y_expr = "+".join(terms).replace("+-", "-")
    # Cast against the graded luma (what colorcorrect sees), fitted over the legal range.
    legal = slice(16, 236)
    yn = yuv[legal, 0] / 255.0
    design = np.stack([1.0 - yn, yn], axis=1)
    sat = max(0.05, float(look.saturation))
    (bl, bh), *_ = np.linalg.lstsq(design, (yuv[legal, 1] - 128.0) / 255.0 / sat, rcond=None)
    (rl, rh), *_ = np.linalg.lstsq(design, (yuv[legal, 2] - 128.0) / 255.0 / sat, rcond=None)
    return [f"lutyuv=y='{y_expr}'",
            f"colorcorrect=rl={rl:.5f}:bl={bl:.5f}:rh={rh:.5f}:bh={bh:.5f}:saturation={sat:.4f}"]
