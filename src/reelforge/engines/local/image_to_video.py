"""image_to_video on the CPU: a graded still, framed for the output, with an eased
camera move, piped frame by frame into libx264.

``render_still_video`` is the whole pipeline with explicit sizes (tests and benches
call it directly); ``ImageToVideoOptions`` turns a job's options into its arguments.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import Invalid, MediaError
from ...media import render
from ...media.ffmpeg import FFmpeg
from ...media.looks import Grain, Look, get_look, grade
from ...media.motion import CameraMove, camera_path, parse_motion, shake_offsets
from ..base import ASPECT_RATIOS, QUALITIES, STYLES, Progress

DURATIONS = (5, 10)
FPS_VALUES = (24, 30)
POSTER_QUALITY = 90


@dataclass(frozen=True)
class ImageToVideoOptions:
    prompt: str = ""
    style: str = "cinematic"
    duration: int = 5
    quality: str = "720p"
    aspect_ratio: str = "16:9"
    fps: int = 24
    seed: int = 0
    watermark: str | None = None
    letterbox: bool | None = None  # None: the look decides (cinematic letterboxes)

    @classmethod
    def parse(cls, options: dict[str, Any], seed: int = 0) -> ImageToVideoOptions:
        """Validate a job's options; raises ``Invalid`` naming the bad field."""
        opts = cls(
            prompt=str(options.get("prompt") or ""),
            style=str(options.get("style") or "cinematic"),
            duration=_int(options, "duration", 5),
            quality=str(options.get("quality") or "720p"),
            aspect_ratio=str(options.get("aspect_ratio") or "16:9"),
            fps=_int(options, "fps", 24),
            seed=_int(options, "seed", seed),
            watermark=(str(options["watermark"]) if options.get("watermark") else None),
            letterbox=(None if options.get("letterbox") is None
                       else bool(options["letterbox"])))
        for field_name, value, allowed in (
                ("style", opts.style, STYLES), ("duration", opts.duration, DURATIONS),
                ("quality", opts.quality, QUALITIES),
                ("aspect_ratio", opts.aspect_ratio, ASPECT_RATIOS),
                ("fps", opts.fps, FPS_VALUES)):
            if value not in allowed:
                raise Invalid(f"{field_name} {value!r} is not supported",
                              fix=f"Use one of: {', '.join(map(str, allowed))}.")
        return opts


def _int(options: dict[str, Any], key: str, default: int) -> int:
    value = options.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Invalid(f"{key} must be a whole number, got {value!r}",
                      fix=f"Send {key} as an integer.") from None


@dataclass(frozen=True)
class RenderResult:
    video: Path
    poster: Path
    width: int
    height: int
    fps: int
    frames: int
    seconds: float
    move: CameraMove
    framing: render.Framing
    subject: render.Subject


def load_image(path: Path, needed: tuple[int, int] | None = None,
               max_pixels: int | None = None) -> np.ndarray:
    """Decode an image file to RGB uint8, upright (EXIF orientation applied).
    Transparent images are laid on white. JPEGs larger than twice ``needed`` are
    decoded at a reduced scale, which is much faster."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if max_pixels and img.width * img.height > max_pixels:
                raise MediaError(f"image is {img.width}x{img.height}, over the "
                                 f"{max_pixels:,}-pixel limit",
                                 fix="Send a smaller image (resize it below the limit).")
            if needed and img.format == "JPEG":
                img.draft("RGB", needed)
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "P", "PA"):
                img = img.convert("RGBA")
                white = Image.new("RGBA", img.size, (255, 255, 255, 255))
                img = Image.alpha_composite(white, img)
            return np.ascontiguousarray(np.asarray(img.convert("RGB")))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise MediaError(f"could not decode the image: {exc}",
                         fix="Send a JPEG, PNG or WebP image that opens in a normal viewer."
                         ) from exc


@dataclass(frozen=True)
class StillPlan:
    """Everything decided before the first frame: the framing, the move, the frames."""

    animator: render.StillAnimator
    frames: int
    move: CameraMove
    framing: render.Framing
    subject: render.Subject


def plan_still(image: np.ndarray, *, width: int, height: int, fps: int, seconds: float,
               look: Look | str, move: CameraMove, seed: int = 0,
               watermark: str | None = None, letterbox: bool | None = None,
               anchor_to_subject: bool = True) -> StillPlan:
    """Frame, grade and scale ``image`` once, and set up the per-frame animator."""
    look = get_look(look) if isinstance(look, str) else look
    frames = max(1, round(seconds * fps))
    top = _letterbox_bar(width, height, look, letterbox)
    pic_h = height - 2 * top
    subject = render.find_subject(image)
    framing = render.plan_framing(image.shape[1], image.shape[0], width / pic_h, subject)
    if anchor_to_subject:
        move = move.with_anchor(*framing.anchor)
    path = camera_path(move, frames)
    shake_px = look.shake * height
    margin = 1.0 + (2.5 * shake_px / min(width, pic_h) if shake_px else 0.0)
    zoom = max(vp.scale for vp in path) * margin
    k = render.canvas_scale(framing, (image.shape[1], image.shape[0]), (width, pic_h), zoom)
    canvas = render.compose_canvas(image, framing, render.even(width * k),
                                   render.even(pic_h * k))
    animator = render.StillAnimator(
        grade(canvas, look), width, height, path, top=top,
        shake=shake_offsets(frames, fps, seed, shake_px), vignette=look.vignette,
        grain=Grain(width, pic_h, look.grain, seed) if look.grain > 0 else None,
        overlay=render.text_overlay(watermark, width, height) if watermark else None,
        zoom_margin=margin)
    return StillPlan(animator, frames, move, framing, subject)


def render_still_video(image: np.ndarray, out_dir: Path, *, width: int, height: int,
                       fps: int, seconds: float, look: Look | str, move: CameraMove,
                       ffmpeg: FFmpeg, seed: int = 0, watermark: str | None = None,
                       letterbox: bool | None = None, preset: str = "veryfast", crf: int = 20,
                       threads: int = 0, progress: Progress | None = None,
                       deadline: float | None = None, anchor_to_subject: bool = True,
                       name: str = "video") -> RenderResult:
    """Render ``image`` (RGB uint8) to ``out_dir/<name>.mp4`` and the poster
    ``<name>.jpg`` (the middle frame). ``progress`` may raise to stop the render."""
    if progress is not None:
        progress("analyzing", 0.0)
    plan = plan_still(image, width=width, height=height, fps=fps, seconds=seconds, look=look,
                      move=move, seed=seed, watermark=watermark, letterbox=letterbox,
                      anchor_to_subject=anchor_to_subject)
    if progress is not None:
        progress("analyzing", 1.0)
    out_dir.mkdir(parents=True, exist_ok=True)
    video = render.encode_frames(ffmpeg, plan.animator, out_dir / f"{name}.mp4", width=width,
                                 height=height, fps=fps, total=plan.frames, preset=preset,
                                 crf=crf, threads=threads, progress=progress,
                                 deadline=deadline)
    poster = out_dir / f"{name}.jpg"
    _save_jpeg(plan.animator.rgb(plan.frames // 2), poster)
    return RenderResult(video=video, poster=poster, width=width, height=height, fps=fps,
                        frames=plan.frames, seconds=plan.frames / fps, move=plan.move,
                        framing=plan.framing, subject=plan.subject)


def _letterbox_bar(width: int, height: int, look: Look, letterbox: bool | None) -> int:
    """Height of each letterbox bar (even), or 0. Only landscape frames narrower than
    the look's picture aspect get bars; portrait and square frames never do."""
    if letterbox is None:
        letterbox = look.letterbox is not None
    if not letterbox or width / height < 1.3:
        return 0
    picture_h = width / (look.letterbox or 2.39)
    bar = (height - picture_h) / 2
    return int(bar // 2) * 2 if bar >= 0.02 * height else 0


def _save_jpeg(rgb: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(rgb).save(path, "JPEG", quality=POSTER_QUALITY, optimize=True)


def run_image_to_video(opts: ImageToVideoOptions, image_path: Path, workdir: Path, *,
                       ffmpeg: FFmpeg, preset: str, progress: Progress,
                       deadline: float | None = None, max_pixels: int | None = None
                       ) -> RenderResult:
    """One image_to_video job from validated options."""
    width, height = render.output_size(opts.quality, opts.aspect_ratio)
    image = load_image(image_path, needed=(width * 2, height * 2), max_pixels=max_pixels)
    move = parse_motion(opts.prompt, opts.style, opts.seed)
    return render_still_video(
        image, workdir, width=width, height=height, fps=opts.fps, seconds=opts.duration,
        look=opts.style, move=move, ffmpeg=ffmpeg, seed=opts.seed, watermark=opts.watermark,
        letterbox=opts.letterbox, preset=preset, progress=progress, deadline=deadline)


def deadline_after(seconds: float | None) -> float | None:
    return None if not seconds else time.monotonic() + seconds
