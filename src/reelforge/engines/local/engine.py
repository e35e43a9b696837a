"""The ``local`` engine: always there, CPU only (ffmpeg + numpy/OpenCV).

Each mode is a ``LocalMode`` in ``MODES``: its runner ``run(ctx, spec, inputs)``, how
many seconds of output it makes (for the cost, from the options alone: inputs are not
read before submission), what it publishes as capabilities, and a plain description.
Adding a mode is adding an entry; nothing here branches on mode names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config import Settings
from ...errors import UnsupportedMode
from ...media import heap
from ...media.ffmpeg import FFmpeg, ffmpeg_for
from ..base import Artifact, Capabilities, Engine, JobSpec, Progress
from ..registry import register
from ...core.options import register_mode_options
from . import clips, extend, image_audio, image_to_video, reel, video_to_video
from .context import RenderContext, deadline_after

Runner = Callable[[RenderContext, JobSpec, dict[str, Any]], list[Artifact]]


@dataclass(frozen=True)
class LocalMode:
    run: Runner
    seconds: Callable[[dict[str, Any]], float]  # output seconds, for the cost estimate
    options: Callable[[], dict[str, Any]]  # published at GET /v1/engines
    description: str
    check: Callable[[dict[str, Any], Settings], None] | None = None  # refuse at submit


MODES: dict[str, LocalMode] = {
    "image_to_video": LocalMode(
        image_to_video.run_image_to_video, image_to_video.output_seconds,
        image_to_video.capability_options, image_to_video.DESCRIPTION),
    "image_audio_to_video": LocalMode(
        image_audio.run_image_audio, image_audio.output_seconds,
        image_audio.capability_options, image_audio.DESCRIPTION),
    "reel": LocalMode(reel.run_reel, reel.output_seconds, reel.capability_options,
                      reel.DESCRIPTION),
    "video_to_video": LocalMode(
        video_to_video.run_video_to_video, video_to_video.output_seconds,
        video_to_video.capability_options, video_to_video.DESCRIPTION,
        check=video_to_video.check_options),
    "extend": LocalMode(extend.run_extend, extend.output_seconds, extend.capability_options,
                        extend.DESCRIPTION),
    "clips": LocalMode(
        lambda ctx, spec, inputs: clips.run_clips(spec, inputs, ctx.workdir, ctx.progress,
                                                  settings=ctx.settings, ffmpeg=ctx.ffmpeg),
        clips.clips_output_seconds, lambda: clips.CLIPS_CAPABILITIES,
        "A long video cut into face-aware, captioned clips (9:16 by default), chosen by "
        "speech, energy, prompt keywords and hook strength; manifest.json lists them."),
}
register_mode_options("clips", clips.validate_clip_options)


@register
class LocalEngine(Engine):
    name = "local"
    priority = 0  # the fallback: configured generative engines are preferred

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        heap.keep_freed_memory()  # renders reuse each other's freed buffers

    @property
    def ffmpeg(self) -> FFmpeg:
        return ffmpeg_for(self.settings.ffmpeg_path)

    def capabilities(self) -> Capabilities:
        return Capabilities(
            engine=self.name, modes=tuple(MODES),
            description="Built-in CPU engine (ffmpeg/libx264 + numpy/OpenCV), always "
                        "available. It animates and grades what you give it; it does not "
                        "invent new content. " + " ".join(
                            f"{name}: {mode.description}" for name, mode in MODES.items()),
            options={name: {"description": mode.description, **mode.options()}
                     for name, mode in MODES.items()})

    def _mode(self, mode: str) -> LocalMode:
        found = MODES.get(mode)
        if found is None:
            raise UnsupportedMode(f"The local engine cannot do {mode}.",
                                  fix=f"Use one of {', '.join(MODES)}, or configure an "
                                      f"engine for {mode}.")
        return found

    def output_seconds(self, mode: str, options: dict[str, Any]) -> float:
        """Seconds of output, an upper bound of what the render makes. Also refuses,
        before anything is queued, options this install cannot honour (e.g. a
        background change without a segmentation model)."""
        found = self._mode(mode)
        if found.check is not None:
            found.check(options, self.settings)
        return float(found.seconds(options))

    def run(self, spec: JobSpec, inputs: dict[str, Any], workdir: Path,
            progress: Progress) -> list[Artifact]:
        found = self._mode(spec.mode)
        if found.check is not None:
            found.check(spec.options, self.settings)
        ctx = RenderContext(self.settings, self.ffmpeg, workdir, progress,
                            deadline_after(self.settings.job_timeout_s))
        return found.run(ctx, spec, inputs)
