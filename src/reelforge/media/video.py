"""Source videos for the frame pipe: their facts, their output size, and their frames.

``source_facts`` probes a stored input (the container forced from the sniffed type, as
at upload). ``fit_size`` picks the output size for a source: the requested aspect (or
the source's own) at the requested quality (or the source's size, at most 1080p).
``crop_for`` is the centred crop that turns the source into that aspect. ``decode``
yields the source's frames, already cropped, scaled and resampled to a constant frame
rate by ffmpeg, as raw ``rgb24`` (H, W, 3) arrays or flat ``yuv420p`` buffers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import Invalid, MediaError
from .ffmpeg import FFmpeg
from .probe import MediaInfo, probe_av
from .render import ASPECTS, SHORT_SIDE, even
from .sniff import sniff_file


@dataclass(frozen=True)
class SourceVideo:
    path: Path
    width: int
    height: int
    fps: float
    duration: float
    has_audio: bool
    bytes: int
    color_matrix: str | None = None  # as probed; None when the file does not say
    full_range: bool = False

    @property
    def aspect(self) -> float:
        return self.width / self.height

    @property
    def matrix(self) -> str:
        """The Y'CbCr matrix to read the source with: its tag, else what players assume
        for untagged video (BT.709 from 720p up, BT.601 below)."""
        if self.color_matrix:
            return self.color_matrix
        return "bt709" if max(self.width, self.height) >= 1280 or min(
            self.width, self.height) >= 720 else "smpte170m"


def scale_filter(src: SourceVideo, width: int, height: int, *, to_bt709: bool = False) -> str:
    """ffmpeg ``scale`` to ``width`` x ``height`` that reads the source with its own
    matrix and range (so nothing is converted twice, and a source that is already
    BT.709 at the output size passes through untouched); ``to_bt709`` keeps the
    output Y'CbCr, BT.709 limited range."""
    out = ":out_color_matrix=bt709:out_range=tv" if to_bt709 else ""
    return (f"scale={width}:{height}:flags=bicubic:in_color_matrix={src.matrix}"
            f":in_range={'pc' if src.full_range else 'tv'}{out}")


def source_facts(path: Path) -> SourceVideo:
    media = sniff_file(path)
    if media.kind == "image":
        raise Invalid("This mode needs a video, but the input is an image.",
                      fix="Send an MP4, MOV, MKV or WebM video.")
    info: MediaInfo = probe_av(path, media.demuxer, fmt=media.format)
    if not info.has_video or not info.width or not info.height:
        raise Invalid("The input has no video stream.",
                      fix="Send an MP4, MOV, MKV or WebM video with a picture.")
    return SourceVideo(path, info.width, info.height, float(info.fps or 24.0), info.duration,
                       info.has_audio, path.stat().st_size, info.color_matrix, info.full_range)


def fit_size(src: SourceVideo, quality: str, aspect_ratio: str,
             scale: float = 1.0) -> tuple[int, int]:
    """Output (width, height), even: ``quality`` may be "source" (the source's short
    side, at most 1080), ``aspect_ratio`` may be "source"."""
    if aspect_ratio == "source":
        aspect = src.aspect
    else:
        a, b = ASPECTS[aspect_ratio]
        aspect = a / b
    short = min(src.width, src.height, 1080) if quality == "source" else SHORT_SIDE[quality]
    w, h = (short * aspect, short) if aspect >= 1 else (short, short / aspect)
    return even(w * scale), even(h * scale)


def crop_for(src: SourceVideo, width: int, height: int) -> str | None:
    """An ffmpeg ``crop`` (centred) from the source to the output aspect, or None."""
    want = width / height
    if abs(want - src.aspect) < 0.01:
        return None
    if src.aspect > want:
        return f"crop=trunc(ih*{want:.6f}/2)*2:ih"
    return f"crop=iw:trunc(iw/{want:.6f}/2)*2"


def frame_count(src: SourceVideo, fps: float, seconds: float | None) -> int:
    """Frames of output at ``fps`` for ``seconds`` of the source (all of it if None)."""
    length = src.duration if seconds is None else min(seconds, src.duration)
    return max(1, int(length * fps + 1e-6))


def decode_args(src: SourceVideo, width: int, height: int, fps: float, frames: int, *,
                pix_fmt: str = "rgb24", start: float = 0.0,
                filters: Sequence[str] = ()) -> list[str]:
    """ffmpeg arguments that write ``frames`` raw frames of the source to stdout."""
    chain = [c for c in (crop_for(src, width, height),
                         scale_filter(src, width, height), f"fps={fps:g}") if c]
    chain += list(filters)
    chain.append(f"format={pix_fmt}")
    return [*(["-ss", f"{start:.6f}"] if start else []), "-i", str(src.path), "-map", "0:v:0",
            "-vf", ",".join(chain), "-frames:v", str(frames), "-f", "rawvideo",
            "-pix_fmt", pix_fmt, "pipe:1"]


def decode(ffmpeg: FFmpeg, src: SourceVideo, width: int, height: int, fps: float,
           frames: int, *, pix_fmt: str = "rgb24", start: float = 0.0,
           filters: Sequence[str] = (), deadline: float | None = None
           ) -> Iterator[np.ndarray]:
    """The source's frames; each array is reused for the next frame (copy to keep)."""
    shape = (height, width, 3) if pix_fmt == "rgb24" else (width * height * 3 // 2,)
    buffer = np.empty(shape, np.uint8)
    args = decode_args(src, width, height, fps, frames, pix_fmt=pix_fmt, start=start,
                       filters=filters)
    count = 0
    with ffmpeg.read(args, deadline=deadline) as proc:
        while count < frames and proc.read_into(buffer):
            count += 1
            yield buffer
    if count == 0:
        raise MediaError("the video decoded to no frames",
                         fix="Check that the video plays in a normal player, then "
                             "re-encode it: `ffmpeg -i in -c:v libx264 out.mp4`.")
