"""The ``local`` engine: always there, CPU only (ffmpeg + numpy/OpenCV)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ...config import Settings
from ...errors import Invalid, UnsupportedMode
from ...media.ffmpeg import FFmpeg, find_ffmpeg
from ...media.looks import LOOK_DESCRIPTIONS
from ...media.motion import MOTION_VOCABULARY
from ..base import (ASPECT_RATIOS, QUALITIES, STYLES, Artifact, Capabilities, Engine, JobSpec,
                    Progress)
from ..registry import register
from .image_to_video import (DURATIONS, FPS_VALUES, ImageToVideoOptions, deadline_after,
                             run_image_to_video)


@register
class LocalEngine(Engine):
    name = "local"
    priority = 0  # the fallback: configured generative engines are preferred

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ffmpeg: FFmpeg | None = None
        self._lock = threading.Lock()

    @property
    def ffmpeg(self) -> FFmpeg:
        """Found on first use, so building the engine never fails for want of ffmpeg."""
        with self._lock:
            if self._ffmpeg is None:
                self._ffmpeg = FFmpeg(find_ffmpeg(self.settings.ffmpeg_path))
            return self._ffmpeg

    def capabilities(self) -> Capabilities:
        return Capabilities(
            engine=self.name, modes=("image_to_video",),
            description="Built-in CPU engine: graded stills with eased, subject-aware camera "
                        "moves, encoded with ffmpeg/libx264. Always available.",
            options={"image_to_video": _image_to_video_options()})

    def output_seconds(self, mode: str, options: dict[str, Any]) -> float:
        return float(options.get("duration") or 5)

    def run(self, spec: JobSpec, inputs: dict[str, Path], workdir: Path,
            progress: Progress) -> list[Artifact]:
        if spec.mode != "image_to_video":
            raise UnsupportedMode(f"The local engine cannot do {spec.mode}.",
                                  fix="Use image_to_video, or configure an engine for "
                                      f"{spec.mode}.")
        image = inputs.get("image")
        if image is None:
            raise Invalid("image_to_video needs an input image.",
                          fix="Send an image (upload or URL) with the job.")
        opts = ImageToVideoOptions.parse(spec.options, seed=spec.seed)
        result = run_image_to_video(
            opts, image, workdir, ffmpeg=self.ffmpeg, preset=self.settings.x264_preset,
            progress=progress, deadline=deadline_after(self.settings.job_timeout_s),
            max_pixels=self.settings.limits.max_image_pixels)
        meta = {"width": result.width, "height": result.height, "duration": result.seconds,
                "fps": result.fps, "frames": result.frames}
        return [
            Artifact("video", result.video, "video/mp4",
                     {**meta, "codec": "h264", "camera": result.move.kind,
                      "style": opts.style, "seed": opts.seed}),
            Artifact("poster", result.poster, "image/jpeg",
                     {"width": result.width, "height": result.height}),
        ]


def _image_to_video_options() -> dict[str, Any]:
    return {
        "prompt": {"type": "string", "description": "Steers the camera; see motion.",
                   "motion": MOTION_VOCABULARY},
        "style": {"values": list(STYLES), "default": "cinematic",
                  "descriptions": dict(LOOK_DESCRIPTIONS)},
        "duration": {"values": list(DURATIONS), "default": 5, "unit": "s"},
        "quality": {"values": list(QUALITIES), "default": "720p"},
        "aspect_ratio": {"values": list(ASPECT_RATIOS), "default": "16:9"},
        "fps": {"values": list(FPS_VALUES), "default": 24},
        "seed": {"type": "integer", "default": 0,
                 "description": "Same seed and inputs give the same video."},
        "watermark": {"type": "string", "default": None,
                      "description": "Text drawn in the bottom-right corner."},
        "letterbox": {"type": "boolean", "default": None,
                      "description": "2.39:1 bars on landscape frames; default on for "
                                     "cinematic only."},
    }
