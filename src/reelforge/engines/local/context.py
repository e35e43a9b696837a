"""What every local mode gets and gives back.

A mode runner is ``run(ctx, spec, inputs) -> list[Artifact]``: ``ctx`` carries the
settings, ffmpeg, the scratch directory, progress and the deadline; ``inputs`` maps
input names to local files (a list for ``images``). ``Rendered`` is the common shape of
a finished render, turned into the artifacts every mode returns: ``video`` (MP4,
H.264, yuv420p, BT.709, faststart), ``poster`` (JPEG) and ``spritesheet`` (JPEG).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...config import Settings
from ...errors import Invalid
from ...media import render
from ...media.ffmpeg import FFmpeg
from ...media.render import AudioTrack
from ...media.thumbs import SpriteLayout, Thumbnails
from ..base import Artifact, Progress


@dataclass(frozen=True)
class RenderContext:
    settings: Settings
    ffmpeg: FFmpeg
    workdir: Path
    progress: Progress
    deadline: float | None = None
    threads: int = 0  # x264 threads; 0 = ffmpeg decides (set for byte-identical output)

    @property
    def preset(self) -> str:
        return self.settings.x264_preset

    @property
    def scale(self) -> float:
        return float(getattr(self.settings, "render_scale", 1.0) or 1.0)

    def output_size(self, quality: str, aspect_ratio: str) -> tuple[int, int]:
        """The promised size for (quality, aspect), times ``render_scale``."""
        return render.scaled(render.output_size(quality, aspect_ratio), self.scale)

    def setting(self, name: str, default: Any) -> Any:
        """A setting that older configurations may lack (read with its default)."""
        value = getattr(self.settings, name, None)
        if value is None:
            value = getattr(self.settings.limits, name, None)
        return default if value is None else value


def deadline_after(seconds: float | None) -> float | None:
    return None if not seconds else time.monotonic() + seconds


@dataclass(frozen=True)
class Rendered:
    video: Path
    poster: Path
    spritesheet: Path
    sprites: SpriteLayout
    width: int
    height: int
    fps: float
    frames: int
    meta: dict[str, Any] = field(default_factory=dict)
    extra: tuple[Artifact, ...] = ()

    @property
    def seconds(self) -> float:
        return round(self.frames / self.fps, 6)

    def artifacts(self) -> list[Artifact]:
        size = {"width": self.width, "height": self.height}
        return [
            Artifact("video", self.video, "video/mp4",
                     {**size, "duration": self.seconds, "fps": self.fps, "frames": self.frames,
                      "codec": "h264", **self.meta}),
            Artifact("poster", self.poster, "image/jpeg", size),
            Artifact("spritesheet", self.spritesheet, "image/jpeg", self.sprites.as_meta()),
            *self.extra,
        ]


def encode(ctx: RenderContext, frames: Iterable[Any], *, width: int, height: int,
           fps: float, total: int, name: str = "video", audio: AudioTrack | None = None,
           pix_fmt: str = "yuv420p", meta: dict[str, Any] | None = None,
           poster_index: int | None = None) -> Rendered:
    """Encode ``frames`` to ``workdir/<name>.mp4`` with its poster and spritesheet."""
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    thumbs = Thumbnails(total, width, height, fps, pix_fmt=pix_fmt, poster_index=poster_index)
    written = 0

    def counted() -> Iterable[Any]:
        nonlocal written
        for frame in frames:
            written += 1
            yield frame

    poster, sheet = ctx.workdir / f"{name}.jpg", ctx.workdir / f"{name}-sprites.jpg"
    video = render.encode_frames(
        ctx.ffmpeg, counted(), ctx.workdir / f"{name}.mp4", width=width, height=height, fps=fps,
        total=total, preset=ctx.preset, threads=ctx.threads, progress=ctx.progress,
        deadline=ctx.deadline, audio=audio, pix_fmt=pix_fmt, on_frame=thumbs,
        on_end=functools.partial(thumbs.write, poster, sheet))
    assert thumbs.layout is not None
    return Rendered(video, poster, sheet, thumbs.layout, width, height, fps, written,
                    dict(meta or {}))


def need(inputs: dict[str, Any], name: str, mode: str) -> Any:
    value = inputs.get(name)
    if not value:
        raise Invalid(f"{mode} needs an input named {name!r}.",
                      fix=f"Send the {name} (upload it, or pass {name}_url or "
                          f"{name}_asset_id) with the job.")
    return value
