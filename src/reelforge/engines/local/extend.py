"""extend (KIE ``/extend``, OpenAI ``extensions``) on the CPU: continue a finished video.

What the local engine does, plainly: it plays the whole source, then adds ``duration``
seconds (1–20, default 5) of camera move over the source's final frame. The move is the
one measured over the source's last frames (zoom and pan speed), carried on and eased to
a slow stop; a static source gets the move the prompt names (if any). Over the source's
last quarter second the live picture is blended into the held frame, so motion in the
scene comes to rest instead of freezing. No new content is generated: people and things
in the scene stop moving, and a zoom out comes to a hold (nothing outside the picture
exists to reveal). The source's audio plays, fading out at its end; the extension is
silent.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np

from ...media import render
from ...media.flow import FrameMotion, continue_path, measure_motion
from ...media.motion import Viewport, ease
from ...media.prompt import VOCABULARY, names_move, parse_prompt
from ...media.render import AudioTrack, StillAnimator, planes_of
from ...media.video import SourceVideo, decode, fit_size, frame_count, source_facts
from ..base import QUALITIES, Artifact, JobSpec
from .context import RenderContext, encode, need
from .video_to_video import VideoLimits

DESCRIPTION = ("Continues a video by 1–20 s as a camera move over its final frame: the "
               "move measured in its last frames is carried on and eased out, and the "
               "last quarter second blends into the held frame. No new content is "
               "generated (the scene itself stops moving); the extension is silent.")
MEASURE_FRAMES = 8
BLEND_SECONDS = 0.25


def output_seconds(options: dict[str, Any]) -> float:
    return float(options.get("duration") or 5)


class ExtendedFrames:
    """The source's frames (yuv420p), then the continuation over its last frame."""

    def __init__(self, ctx: RenderContext, src: SourceVideo, width: int, height: int,
                 fps: float, source_frames: int, extra_frames: int, prompt: str,
                 seed: int) -> None:
        self.ctx, self.src = ctx, src
        self.width, self.height, self.fps = width, height, fps
        self.source_frames, self.extra = source_frames, extra_frames
        self.blend = min(max(2, round(BLEND_SECONDS * fps)), max(0, source_frames - 1))
        params = parse_prompt(prompt, "cinematic", seed)
        self.prompt_move = params.move if names_move(prompt) else None
        self.motion: FrameMotion | None = None

    @property
    def total(self) -> int:
        return self.source_frames + self.extra

    def __iter__(self) -> Iterator[np.ndarray]:
        w, h = self.width, self.height
        size = w * h * 3 // 2
        # The last frames are held back until the motion is known, then blended.
        held: deque[np.ndarray] = deque(maxlen=max(MEASURE_FRAMES, self.blend + 1))
        count = 0
        for frame in decode(self.ctx.ffmpeg, self.src, w, h, self.fps, self.source_frames,
                            pix_fmt="yuv420p", deadline=self.ctx.deadline):
            if len(held) == held.maxlen:
                yield held[0]  # oldest leaves before the deque drops it
            held.append(frame.copy())
            count += 1
        self.source_frames = count
        last = held[-1]
        self.motion = measure_motion([planes_of(f, w, h)[0] for f in
                                      list(held)[-MEASURE_FRAMES:]])
        # Poses of the held frame at the times of the last `blend` source frames (the
        # final one, t = 0, is the frame itself).
        lead = continue_path(self.motion, self.blend, prompt_move=self.prompt_move,
                             start=1 - self.blend)
        back = StillAnimator.from_frame(last, w, h, lead)
        out = np.empty(size, np.uint8)
        tail = list(held)
        live = tail[:len(tail) - self.blend]
        for frame in live:
            yield frame
        for k, frame in enumerate(tail[len(tail) - self.blend:]):
            weight = ease("smoothstep", (k + 1) / self.blend)
            cv2.addWeighted(frame, 1.0 - weight, back.frame(k), weight, 0.0, dst=out)
            yield out
        path = continue_path(self.motion, self.extra, prompt_move=self.prompt_move)
        ahead = StillAnimator.from_frame(last, w, h, path)
        yield from ahead

    def viewports(self) -> list[Viewport]:
        assert self.motion is not None
        return continue_path(self.motion, self.extra, prompt_move=self.prompt_move)


def run_extend(ctx: RenderContext, spec: JobSpec, inputs: dict[str, Any]) -> list[Artifact]:
    opts = spec.options
    src = source_facts(need(inputs, "video", spec.mode))
    VideoLimits.from_ctx(ctx).check(src, spec.mode)
    seed = int(opts.get("seed", spec.seed) or 0)
    width, height = fit_size(src, opts.get("quality") or "source",
                             opts.get("aspect_ratio") or "source", ctx.scale)
    fps_opt = opts.get("fps")
    fps = float(min(30, max(1, round(src.fps)))) if fps_opt in (None, "", "source") \
        else float(fps_opt)
    source_frames = frame_count(src, fps, None)
    extra = max(1, round(output_seconds(opts) * fps))
    frames = ExtendedFrames(ctx, src, width, height, fps, source_frames, extra,
                            opts.get("prompt") or "", seed)
    ctx.progress("analyzing", 1.0)
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    total = source_frames + extra
    end = source_frames / fps
    audio = AudioTrack(src.path, seconds=end, optional=True,
                       filter=f"afade=t=out:st={max(0.0, end - 0.6):.4f}:d=0.6,"
                              f"apad=whole_dur={total / fps:.6f}")
    watermark = opts.get("watermark")
    source: Any = frames
    if watermark:
        overlay = render.text_overlay(watermark, width, height)

        def marked() -> Iterator[np.ndarray]:
            for frame in frames:
                overlay.blend(planes_of(frame, width, height))
                yield frame

        source = marked()
    rendered = encode(ctx, source, width=width, height=height, fps=fps, total=total,
                      audio=audio, poster_index=min(total - 1, source_frames + extra // 2),
                      meta={"seed": seed, "source_seconds": round(src.duration, 3),
                            "extended_seconds": round(extra / fps, 4),
                            "extended_from_frame": source_frames})
    motion = frames.motion
    if motion is not None:
        rendered.meta["carried_motion"] = {
            "zoom_per_second": round(motion.zoom ** fps, 4),
            "pan_px_per_second": [round(motion.dx * fps, 2), round(motion.dy * fps, 2)]}
    return rendered.artifacts()


def capability_options() -> dict[str, Any]:
    return {
        "inputs": {"video": "required (a finished job's video, or an upload)"},
        "duration": {"type": "number", "min": 1, "max": 20, "default": 5, "unit": "s",
                     "description": "Seconds added after the source."},
        "prompt": {"type": "string", "vocabulary": {"camera": VOCABULARY["camera"]},
                   "description": "Used only when the source's camera is still: names "
                                  "the move to make over the final frame."},
        "quality": {"values": ["source", *QUALITIES], "default": "source"},
        "what_it_does": __doc__.split("\n\n")[1].replace("\n", " ") if __doc__ else "",
        "outputs": ["video (the source followed by the extension)", "poster",
                    "spritesheet"],
    }
