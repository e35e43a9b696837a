"""The frame pipe: a camera moving over a still image, encoded to H.264 MP4.

Work that depends only on the picture is done once: find the subject and frame the
picture around it (``framing.py``: a crop, or a fit over a blurred copy of itself when
a crop would lose too much) on a canvas a little larger than the output (enough for
the deepest zoom, so views never upsample), grade it, and convert it to BT.709 Y'CbCr
planes. Per frame, ``StillAnimator`` only resamples those planes (one scale and
offset each, sub-pixel, bilinear) straight into a reused yuv420p buffer, then adds
the frame effects (vignette, grain, watermark). ``encode_frames`` pipes the buffers
to libx264, so ffmpeg does no conversion at all.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

from ..errors import Invalid
from . import cvpool, fused
from .ffmpeg import FFmpeg
from .motion import Viewport

ASPECTS = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1), "4:3": (4, 3), "3:4": (3, 4),
           "4:5": (4, 5), "21:9": (21, 9)}
SHORT_SIDE = {"720p": 720, "1080p": 1080}
# BT.709, limited ("tv") range: rows give Y, Cb, Cr from R, G, B in 0..255.
_KR, _KB = 0.2126, 0.0722
_KG = 1.0 - _KR - _KB
RGB_TO_YUV = np.array([
    [219 / 255 * _KR, 219 / 255 * _KG, 219 / 255 * _KB, 16.0],
    [-224 / 255 * _KR / (2 - 2 * _KB), -224 / 255 * _KG / (2 - 2 * _KB), 224 / 255 * 0.5, 128.0],
    [224 / 255 * 0.5, -224 / 255 * _KG / (2 - 2 * _KR), -224 / 255 * _KB / (2 - 2 * _KR), 128.0],
], dtype=np.float32)
COLOR_ARGS = ("-color_range", "tv", "-colorspace", "bt709", "-color_primaries", "bt709",
              "-color_trc", "bt709")
# Tags frames coming out of a filter graph (the encoder takes the frames' own tags).
TAG_BT709 = "setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709"


def even(x: float) -> int:
    return max(2, int(round(x / 2.0)) * 2)


def scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """``size`` times ``scale`` (``Settings.render_scale``), both sides even."""
    if scale == 1.0:
        return size
    return even(size[0] * scale), even(size[1] * scale)


def output_size(quality: str, aspect_ratio: str) -> tuple[int, int]:
    """(width, height): the short side is 720 or 1080, both even."""
    if quality not in SHORT_SIDE:
        raise Invalid(f"unknown quality {quality!r}", fix=f"Use one of: {', '.join(SHORT_SIDE)}.")
    if aspect_ratio not in ASPECTS:
        raise Invalid(f"unknown aspect_ratio {aspect_ratio!r}",
                      fix=f"Use one of: {', '.join(ASPECTS)}.")
    short = SHORT_SIDE[quality]
    a, b = ASPECTS[aspect_ratio]
    return (even(short * a / b), short) if a >= b else (short, even(short * b / a))


# ---------------------------------------------------------------- colour

def rgb_to_planes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.709 limited-range Y (full size) and Cb, Cr (half size) planes, uint8."""
    yuv = cv2.transform(rgb, RGB_TO_YUV)
    h, w = rgb.shape[:2]
    half = (max(1, w // 2), max(1, h // 2))
    y, u, v = cv2.split(yuv)
    return (np.ascontiguousarray(y), cv2.resize(u, half, interpolation=cv2.INTER_AREA),
            cv2.resize(v, half, interpolation=cv2.INTER_AREA))


YUV_TO_RGB = np.linalg.inv(np.vstack([RGB_TO_YUV, [0, 0, 0, 1]]))[:3].astype(np.float32)


def yuv_to_rgb(yuv: np.ndarray) -> np.ndarray:
    """RGB uint8 from a full-resolution (H, W, 3) Y'CbCr image, BT.709 limited range
    (OpenCV rounds and saturates as it converts: one pass, no float copies)."""
    return cv2.transform(np.asarray(yuv, dtype=np.uint8), YUV_TO_RGB)


def yuv420_to_rgb(buf: np.ndarray, width: int, height: int) -> np.ndarray:
    """An RGB uint8 image from one yuv420p frame (BT.709 limited range)."""
    y, u, v = planes_of(np.asarray(buf).reshape(-1), width, height)
    chroma = [cv2.resize(c, (width, height), interpolation=cv2.INTER_LINEAR) for c in (u, v)]
    return yuv_to_rgb(np.dstack([y, chroma[0], chroma[1]]))


# ---------------------------------------------------------------- overlays

@dataclass(frozen=True)
class Overlay:
    """A pre-rendered RGBA overlay as Y'CbCr planes and alpha, placed at (x, y) (even)."""

    x: int
    y: int
    planes: tuple[np.ndarray, np.ndarray, np.ndarray]
    alphas: tuple[np.ndarray, np.ndarray]  # float32 at full and half size

    @classmethod
    def from_rgba(cls, rgba: np.ndarray, x: int, y: int) -> Overlay:
        h, w = rgba.shape[:2]
        rgba = rgba[: h - h % 2, : w - w % 2]
        planes = rgb_to_planes(np.ascontiguousarray(rgba[..., :3]))
        alpha = rgba[..., 3].astype(np.float32) / 255.0
        half = cv2.resize(alpha, (alpha.shape[1] // 2, alpha.shape[0] // 2),
                          interpolation=cv2.INTER_AREA)
        return cls(x - x % 2, y - y % 2, planes, (alpha, half))

    def blend(self, planes: Sequence[np.ndarray]) -> None:
        for k, (dst, src) in enumerate(zip(planes, self.planes)):
            alpha = self.alphas[0 if k == 0 else 1]
            x, y = (self.x, self.y) if k == 0 else (self.x // 2, self.y // 2)
            h, w = src.shape
            region = dst[y:y + h, x:x + w]
            dst[y:y + h, x:x + w] = cv2.blendLinear(region, src, 1.0 - alpha, alpha)


def text_overlay(text: str, width: int, height: int) -> Overlay:
    """A watermark in the bottom-right corner: white text with a soft shadow,
    drawn with Pillow's bundled font (no font files needed)."""
    rgba, x, y = watermark_rgba(text, width, height)
    return Overlay.from_rgba(rgba, x, y)


def watermark_rgba(text: str, width: int, height: int) -> tuple[np.ndarray, int, int]:
    """The watermark as an RGBA image and where its top-left corner goes."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    short = min(width, height)
    size_px = max(10, round(short * 0.032))
    font = ImageFont.load_default(size=size_px)
    left, top, right, bottom = font.getbbox(text)
    if right - left > 0.8 * width:  # long text: shrink it to fit the frame
        size_px = max(8, int(size_px * 0.8 * width / (right - left)))
        font = ImageFont.load_default(size=size_px)
        left, top, right, bottom = font.getbbox(text)
    pad = max(4, round(short * 0.01))
    size = (right - left + 2 * pad, bottom - top + 2 * pad)
    shadow = Image.new("L", size, 0)
    ImageDraw.Draw(shadow).text((pad - left + 1, pad - top + 1), text, font=font, fill=150)
    shadow = shadow.filter(ImageFilter.GaussianBlur(max(1, pad // 3)))
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    layer.putalpha(shadow)
    ImageDraw.Draw(layer).text((pad - left, pad - top), text, font=font,
                               fill=(255, 255, 255, 210))
    rgba = np.asarray(layer)
    if rgba.shape[1] > width or rgba.shape[0] > height:
        raise Invalid(f"watermark {text!r} is too long for a {width}x{height} video",
                      fix="Use a shorter watermark text.")
    margin = round(short * 0.03)
    return rgba, width - rgba.shape[1] - margin, height - rgba.shape[0] - margin


def blend_rgba(rgb: np.ndarray, rgba: np.ndarray, x: int, y: int) -> None:
    """Alpha-blend ``rgba`` onto ``rgb`` (in place) with its top-left corner at (x, y)."""
    h, w = rgba.shape[:2]
    region = rgb[y:y + h, x:x + w]
    alpha = rgba[:region.shape[0], :region.shape[1], 3:].astype(np.float32) / 255.0
    colour = rgba[:region.shape[0], :region.shape[1], :3].astype(np.float32)
    region[:] = (region * (1.0 - alpha) + colour * alpha + 0.5).astype(np.uint8)


# ---------------------------------------------------------------- frames

# Draws on one frame's (Y, Cb, Cr) planes in place: captions, a waveform, ...
FrameHook = Callable[[int, Sequence[np.ndarray]], None]


def planes_of(buffer: np.ndarray, width: int, height: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of a flat yuv420p buffer as its Y, Cb and Cr planes."""
    n = width * height
    return (buffer[:n].reshape(height, width),
            buffer[n:n + n // 4].reshape(height // 2, width // 2),
            buffer[n + n // 4:n + n // 2].reshape(height // 2, width // 2))


VIEW_PAD = 32  # reflected canvas pixels around each plane, room for the views (draw_view)
# How far from its exact place a view may land, in canvas pixels. Views downscale, so
# this is under 1/16 of an output pixel: invisible. (warpAffine itself places to 1/32;
# at 1/32 here, a zoom passing near a simple fraction such as 6/5 or 9/7, whose skips
# reach only a few distinct offsets, fell back to warpAffine for 30-40 of 450 views.)
VIEW_TOLERANCE = 1 / 16
VIEW_TRIES = 96


_SKIPS = np.arange(VIEW_TRIES, dtype=np.float64) + 0.5


class ViewFit(NamedTuple):
    """One view drawn as ``cv2.resize`` of a region (see ``fit_views``): the source
    rows ``y0:y0 + rh`` and columns ``x0:x0 + rw`` scaled by ``fx``, ``fy``, less
    the first ``skip_y`` rows and ``skip_x`` columns of the result."""

    x0: int
    y0: int
    rw: int
    rh: int
    fx: float
    fy: float
    skip_x: int
    skip_y: int


def _fit_offsets(scale: np.ndarray, offset: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per view, integers (skip, start) with ``(skip + 0.5) * scale - 0.5 + start``
    within ``VIEW_TOLERANCE`` of ``offset`` (the fewest leading output pixels to
    drop), and whether there are such integers."""
    want = (offset + 0.5)[:, None] - _SKIPS[None, :] * scale[:, None]
    near = np.abs(want - np.rint(want)) <= VIEW_TOLERANCE
    skip = near.argmax(axis=1)
    return skip, np.rint(want[np.arange(len(want)), skip]), near.any(axis=1)


def fit_views(ms: np.ndarray, src_shape: tuple[int, ...], dst_shape: tuple[int, ...]
              ) -> list[ViewFit | None]:
    """How to draw each view ``ms[i]`` (output pixel -> source pixel, scale and offset
    only) of a ``src_shape`` plane into a ``dst_shape`` one as ``cv2.resize`` of a
    region: about 1.7x cheaper than ``cv2.warpAffine``, whose per-pixel coordinates a
    pure zoom and pan do not need. Worked out for a whole camera path at once.

    ``resize`` maps output pixel ``x`` of a region that starts at whole pixel ``start``
    to ``(x + 0.5) * scale - 0.5 + start``, so on its own it could only place the view
    to a whole source pixel. Dropping the first ``skip`` output columns (rows) shifts
    that by ``skip * scale``, whose fractional parts, for a scale that is not a simple
    fraction, come within ``VIEW_TOLERANCE`` of any offset after a few steps. None (the
    caller warps) where no such skip is found, the region would leave the source, or
    the scale is 1 (resize would only copy the region)."""
    sx, ox, sy, oy = ms[:, 0, 0], ms[:, 0, 2], ms[:, 1, 1], ms[:, 1, 2]
    skip_x, x0, found_x = _fit_offsets(sx, ox)
    skip_y, y0, found_y = _fit_offsets(sy, oy)
    out_h, out_w = dst_shape[:2]
    rw = np.ceil((skip_x + out_w) * sx) + 2
    rh = np.ceil((skip_y + out_h) * sy) + 2
    usable = (found_x & found_y & (ms[:, 0, 1] == 0) & (ms[:, 1, 0] == 0)
              & (x0 >= 0) & (y0 >= 0) & (x0 + rw <= src_shape[1]) & (y0 + rh <= src_shape[0])
              & ~((np.rint(rw / sx) == rw) & (np.rint(rh / sy) == rh)))
    return [ViewFit(int(x0[i]), int(y0[i]), int(rw[i]), int(rh[i]), 1.0 / float(sx[i]),
                    1.0 / float(sy[i]), int(skip_x[i]), int(skip_y[i])) if usable[i] else None
            for i in range(len(ms))]


Vignette = tuple[np.ndarray, np.ndarray]  # per plane (gain, offset), see fused.gain_offset


def draw_view(src: np.ndarray, fit: ViewFit, dst: np.ndarray,
              vignette: Vignette | None = None) -> bool:
    """Fill ``dst`` with the view ``fit`` of ``src``, bilinear; with a ``vignette``,
    applied on its way into ``dst`` (one pass, see ``fused.resize_view``). False (the
    caller warps) if resize rounded the region to too few pixels."""
    return fused.resize_view(src, (fit.x0, fit.y0, fit.rw, fit.rh), (fit.fx, fit.fy),
                             (fit.skip_x, fit.skip_y), dst, vignette)


@dataclass(frozen=True)
class _Views:
    """A ``StillAnimator``'s padded planes and each frame's view of each plane."""

    sources: tuple[np.ndarray, ...]
    padded: tuple[np.ndarray, ...]
    matrices: tuple[np.ndarray, ...]  # per plane, (frames, 2, 3)
    fits: tuple[list[ViewFit | None], ...]  # per plane, per frame


class StillAnimator:
    """yuv420p frames of a camera moving over a canvas (RGB, already graded).

    The picture occupies rows ``top`` .. ``height - top`` (letterbox bars above and
    below stay black). ``frame(i)`` returns one reused flat buffer: copy it to keep it.
    """

    def __init__(self, canvas: np.ndarray, width: int, height: int,
                 path: Sequence[Viewport], *, top: int = 0,
                 shake: Sequence[tuple[float, float]] | None = None, vignette: float = 0.0,
                 grain: Any = None, overlay: Overlay | None = None,
                 zoom_margin: float = 1.0, hooks: Sequence[FrameHook] = ()) -> None:
        if width % 2 or height % 2 or top % 2:
            raise ValueError("frame width, height and letterbox must be even")
        self.width, self.height, self.top = width, height, top
        self.path = list(path)
        self.shake = list(shake) if shake else [(0.0, 0.0)] * len(self.path)
        self.zoom_margin = zoom_margin
        self.grain, self.overlay = grain, overlay
        self.hooks = tuple(hooks)
        self.sources = rgb_to_planes(canvas)
        self.buffer = np.empty(width * height * 3 // 2, dtype=np.uint8)
        self.planes = planes_of(self.buffer, width, height)
        self.planes[0][:] = 16  # black bars, in limited range
        self.planes[1][:] = 128
        self.planes[2][:] = 128
        bars = (top, top // 2, top // 2)
        self.pictures = tuple(p[b:p.shape[0] - b] for p, b in zip(self.planes, bars))
        self._vignette = self._vignette_planes(vignette) if vignette > 0 else None
        self._prepared: _Views | None = None
        self._held: tuple[Any, tuple[np.ndarray, ...]] | None = None  # see frame()

    @classmethod
    def from_frame(cls, buffer: np.ndarray, width: int, height: int,
                   path: Sequence[Viewport]) -> StillAnimator:
        """Camera moves over one yuv420p frame, warping its own planes (no colour
        round trip, so the identity view reproduces the frame exactly)."""
        animator = cls(np.zeros((2, 2, 3), np.uint8), width, height, path)
        animator.sources = tuple(np.ascontiguousarray(p.copy())
                                 for p in planes_of(buffer, width, height))
        return animator

    def __len__(self) -> int:
        return len(self.path)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.frame(i) for i in range(len(self.path)))

    def _vignette_planes(self, strength: float) -> list[Vignette]:
        from .looks import vignette_yuv

        pic_h = self.pictures[0].shape[0]
        gain, offset = vignette_yuv(self.width, pic_h, strength)
        return list(zip(planes_of(gain, self.width, pic_h), planes_of(offset, self.width, pic_h)))

    def _matrices(self, src_shape: tuple[int, ...], dst_shape: tuple[int, ...]
                  ) -> np.ndarray:
        """Per frame, output pixel -> padded canvas pixel for one plane (pixel centres
        at +0.5), as an (N, 2, 3) array."""
        src_h, src_w = src_shape
        dst_h, dst_w = dst_shape
        scale, cx, cy = np.array([(vp.scale, vp.cx, vp.cy) for vp in self.path],
                                 dtype=np.float64).reshape(-1, 3).T
        shift_x, shift_y = np.array(self.shake, dtype=np.float64).reshape(-1, 2).T
        s = scale * self.zoom_margin
        ax, ay = src_w / (s * dst_w), src_h / (s * dst_h)
        ratio = dst_w / self.width  # 1 for luma, 1/2 for chroma
        dx, dy = shift_x * ratio, shift_y * ratio
        bx = src_w * (cx - 0.5 / s) + ax * (0.5 + dx) - 0.5
        by = src_h * (cy - 0.5 / s) + ay * (0.5 + dy) - 0.5
        m = np.zeros((len(self.path), 2, 3), dtype=np.float64)
        m[:, 0, 0], m[:, 0, 2] = ax, bx + VIEW_PAD
        m[:, 1, 1], m[:, 1, 2] = ay, by + VIEW_PAD
        return m

    def _views(self) -> _Views:
        """The planes with ``VIEW_PAD`` reflected pixels around them, and every frame's
        view of each (made once per set of sources)."""
        if self._prepared is None or self._prepared.sources is not self.sources:
            pad = VIEW_PAD
            padded = tuple(cv2.copyMakeBorder(p, pad, pad, pad, pad, cv2.BORDER_REFLECT)
                           for p in self.sources)
            matrices = tuple(self._matrices(src.shape, dst.shape)
                             for src, dst in zip(self.sources, self.pictures))
            fits = tuple(fit_views(m, p.shape, dst.shape)
                         for m, p, dst in zip(matrices, padded, self.pictures))
            self._prepared = _Views(self.sources, padded, matrices, fits)
        return self._prepared

    def frame(self, i: int) -> np.ndarray:
        view = (self.path[i], self.shake[i])
        if self._held is not None and self._held[0] == view:
            for dst, kept in zip(self.pictures, self._held[1]):
                np.copyto(dst, kept)
        else:
            self._resample(i)
            # A camera at rest (a static shot, a held end) shows the same view next
            # frame: keep it clean of grain and hooks, to copy rather than resample.
            following = i + 1 < len(self.path) and (self.path[i + 1], self.shake[i + 1])
            self._held = ((view, tuple(p.copy() for p in self.pictures))
                          if following == view else None)
        if self.grain is not None:
            self.grain.apply(self.pictures[0], i)
        for hook in self.hooks:
            hook(i, self.planes)
        if self.overlay is not None:
            self.overlay.blend(self.planes)
        return self.buffer

    def _resample(self, i: int) -> None:
        """Draw frame ``i``'s view into the picture planes, vignetted."""
        views = self._views()
        for k, (src, dst) in enumerate(zip(views.padded, self.pictures)):
            vignette = self._vignette[k] if self._vignette is not None else None
            fit = views.fits[k][i]
            if fit is None or not draw_view(src, fit, dst, vignette):
                cv2.warpAffine(src, views.matrices[k][i], (dst.shape[1], dst.shape[0]),
                               dst=dst, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT)
                if vignette is not None:
                    fused.gain_offset(dst, *vignette, dst)

    def rgb(self, i: int) -> np.ndarray:
        """Frame ``i`` as an RGB image (for posters and checks)."""
        return yuv420_to_rgb(self.frame(i), self.width, self.height)


# ---------------------------------------------------------------- encoding

@dataclass(frozen=True)
class AudioTrack:
    """A second input muxed under the piped frames: ``path`` read from ``start`` for
    ``seconds`` (all of it when None), encoded to AAC (``copy``: muxed as it is).
    ``optional``: a file without audio gives a silent video instead of an error."""

    path: Path
    start: float = 0.0
    seconds: float | None = None
    filter: str | None = None
    bitrate: str = "160k"
    optional: bool = False
    copy: bool = False


def audio_args(track: AudioTrack | None) -> tuple[list[str], list[str]]:
    """(input args, output args) for ``track``; both empty without one."""
    if track is None:
        return [], ["-an"]
    inputs = [*(["-ss", f"{track.start:.6f}"] if track.start else []),
              *(["-t", f"{track.seconds:.6f}"] if track.seconds else []), "-i", str(track.path)]
    codec = (["-c:a", "copy"] if track.copy else
             ["-c:a", "aac", "-b:a", track.bitrate, "-ar", "48000"])
    outputs = ["-map", "0:v:0", "-map", "1:a:0" + ("?" if track.optional else ""),
               *(["-af", track.filter] if track.filter and not track.copy else []), *codec]
    return inputs, outputs


def x264_args(width: int, height: int, fps: float, out_path: Path, *, preset: str = "veryfast",
              crf: int = 20, threads: int = 0, audio: AudioTrack | None = None,
              pix_fmt: str = "yuv420p") -> list[str]:
    """ffmpeg arguments: raw frames on stdin (yuv420p, BT.709 limited range; or
    ``rgb24``, converted by ffmpeg) plus an optional audio track -> H.264 MP4, BT.709,
    faststart."""
    a_in, a_out = audio_args(audio)
    if pix_fmt == "yuv420p":
        video_in = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s:v", f"{width}x{height}",
                    "-framerate", f"{fps:g}", *COLOR_ARGS, "-i", "pipe:0"]
        convert: list[str] = []
    else:
        video_in = ["-f", "rawvideo", "-pix_fmt", pix_fmt, "-s:v", f"{width}x{height}",
                    "-framerate", f"{fps:g}", "-i", "pipe:0"]
        convert = ["-vf", f"scale=out_color_matrix=bt709:out_range=tv,format=yuv420p,{TAG_BT709}"]
    return [*video_in, *a_in, *convert, *a_out,
            "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-profile:v", "high",
            "-pix_fmt", "yuv420p", *COLOR_ARGS, *(["-threads", str(threads)] if threads else []),
            "-movflags", "+faststart", "-map_metadata", "-1", "-f", "mp4", str(out_path)]


OnFrame = Callable[[int, np.ndarray], None]
_NO_FRAME = object()


def encode_frames(ffmpeg: FFmpeg, frames: Iterable[Any], out_path: Path, *, width: int,
                  height: int, fps: float, total: int, preset: str = "veryfast", crf: int = 20,
                  threads: int = 0, progress: Any = None, deadline: float | None = None,
                  every: int = 6, audio: AudioTrack | None = None, pix_fmt: str = "yuv420p",
                  on_frame: OnFrame | None = None, on_end: Callable[[], Any] | None = None
                  ) -> Path:
    """Pipe raw frames into libx264 and write ``out_path`` (atomically: a failed or
    cancelled encode leaves no file). ``progress("rendering", fraction)`` is called
    every ``every`` frames and may raise to stop; ffmpeg is killed before it propagates.
    ``on_frame(i, frame)`` sees each frame (0-based) before it is written, e.g. to keep
    thumbnails; ``on_end()`` runs once the last frame is written, while x264 encodes
    the frames it still holds (e.g. to write the thumbnails). x264 output is
    deterministic for the same frames, settings and thread count; pass ``threads`` to
    make bytes identical across machines with different cores."""
    out_path = Path(out_path)
    part = out_path.with_name(out_path.name + ".part")
    args = x264_args(width, height, fps, part, preset=preset, crf=crf, threads=threads,
                     audio=audio, pix_fmt=pix_fmt)
    frames = iter(frames)
    try:
        with ffmpeg.pipe(args, deadline=deadline) as proc:
            # The producer's set-up (planning a still, opening a source) runs in the
            # first next(), while x264 has nothing to do yet and OpenCV may use every
            # core; after it, x264 keeps the cores busy (see cvpool).
            first = next(frames, _NO_FRAME)
            with cvpool.single_threaded():
                ahead = () if first is _NO_FRAME else (first,)
                for i, frame in enumerate(itertools.chain(ahead, frames), start=1):
                    if on_frame is not None:
                        on_frame(i - 1, frame)
                    proc.write(frame)
                    if progress is not None and (i % every == 0 or i == total):
                        progress("rendering", min(1.0, i / total))
            proc.end_input()
            if on_end is not None:
                on_end()
            proc.finish()
        os.replace(part, out_path)
    finally:
        part.unlink(missing_ok=True)
    return out_path
