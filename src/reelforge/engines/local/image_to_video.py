"""image_to_video on the CPU: a graded still, framed for the output, with an eased
camera move, piped frame by frame into libx264.

``render_still_video`` is the whole pipeline with explicit sizes (tests and benches
call it directly; image_audio_to_video and reel reuse it and ``plan_still``);
``ImageToVideoOptions`` turns a job's options into its arguments, and
``run_image_to_video`` is the mode runner: the camera move comes from the prompt
(``media/prompt.py``), the size from quality and aspect ratio times ``render_scale``,
and the outputs are the video, its poster and a thumbnail spritesheet.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import Invalid, MediaError
from ...media import render
from ...media.ffmpeg import FFmpeg
from ...media.framing import (Framing, Subject, canvas_scale, compose_canvas, find_subject,
                              plan_framing)
from ...media.looks import Grain, Look, get_look, grade
from ...media.motion import CameraMove, Viewport, camera_path, shake_offsets
from ...media.prompt import parse_prompt
from ...media.render import AudioTrack, FrameHook
from ...media.thumbs import SpriteLayout, Thumbnails
from ..base import ASPECT_RATIOS, QUALITIES, STYLES, Artifact, JobSpec, Progress
from .context import RenderContext, Rendered, deadline_after, need  # noqa: F401

DURATIONS = (5, 10)
FPS_VALUES = (24, 30)


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
            letterbox=_letterbox(options.get("letterbox")))
        for field_name, value, allowed in (
                ("style", opts.style, STYLES), ("duration", opts.duration, DURATIONS),
                ("quality", opts.quality, QUALITIES),
                ("aspect_ratio", opts.aspect_ratio, ASPECT_RATIOS),
                ("fps", opts.fps, FPS_VALUES)):
            if value not in allowed:
                raise Invalid(f"{field_name} {value!r} is not supported",
                              fix=f"Use one of: {', '.join(map(str, allowed))}.")
        return opts


def _letterbox(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


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
    spritesheet: Path
    sprites: SpriteLayout
    width: int
    height: int
    fps: int
    frames: int
    seconds: float
    move: CameraMove
    framing: Framing
    subject: Subject


def load_image(path: Path, needed: tuple[int, int] | None = None,
               max_pixels: int | None = None) -> np.ndarray:
    """Decode an image file to RGB uint8, upright (EXIF orientation applied).
    Transparent images are laid on white. JPEGs larger than twice ``needed`` are
    decoded at a reduced scale, which is much faster."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        data = Path(path).read_bytes()  # read once: Pillow for the header, then a decoder
        with Image.open(io.BytesIO(data)) as img:
            if max_pixels and img.width * img.height > max_pixels:
                raise MediaError(f"image is {img.width}x{img.height}, over the "
                                 f"{max_pixels:,}-pixel limit",
                                 fix="Send a smaller image (resize it below the limit).")
            if img.format == "JPEG" and img.mode == "RGB" and _upright(img):
                decoded = _decode_jpeg(data, (img.width, img.height), needed)
                if decoded is not None:
                    return decoded
            if needed and img.format == "JPEG":
                img.draft("RGB", needed)
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # no copy of a large photo
            if img.mode in ("RGBA", "LA", "P", "PA"):
                img = img.convert("RGBA")
                white = Image.new("RGBA", img.size, (255, 255, 255, 255))
                img = Image.alpha_composite(white, img)
            if img.mode != "RGB":
                img = img.convert("RGB")
            return np.ascontiguousarray(np.asarray(img))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise MediaError(f"could not decode the image: {exc}",
                         fix="Send a JPEG, PNG or WebP image that opens in a normal viewer."
                         ) from exc


def _upright(img: Any) -> bool:
    """Whether ``img`` (opened, not loaded) is stored upright (EXIF orientation 1)."""
    return img.getexif().get(0x0112, 1) == 1


def _decode_jpeg(data: bytes, size: tuple[int, int], needed: tuple[int, int] | None
                 ) -> np.ndarray | None:
    """An upright colour JPEG decoded by OpenCV straight to RGB, at the reduced scale
    Pillow's ``draft`` would pick: the same pixels (both are libjpeg-turbo) without
    Pillow's copy out of its image (11 against 15 ms for a 2400x1600 photo). None where
    OpenCV cannot decode it (the caller falls back to Pillow)."""
    import cv2

    factor = 1
    while needed and factor < 8 and all(-(-s // (2 * factor)) >= n
                                        for s, n in zip(size, needed)):
        factor *= 2
    reduced = {1: 0, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
               8: cv2.IMREAD_REDUCED_GRAYSCALE_8}[factor]  # the scale bits only
    rgb = cv2.imdecode(np.frombuffer(data, dtype=np.uint8),
                       reduced | cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
    return rgb if rgb is not None and rgb.ndim == 3 else None


@dataclass(frozen=True)
class StillPlan:
    """Everything decided before the first frame: the framing, the move, the frames."""

    animator: render.StillAnimator
    frames: int
    move: CameraMove
    framing: Framing
    subject: Subject


def plan_still(image: np.ndarray | Callable[[], np.ndarray], *, width: int, height: int,
               fps: float, seconds: float, look: Look | str, move: CameraMove, seed: int = 0,
               watermark: str | None = None, letterbox: bool | None = None,
               anchor_to_subject: bool = True, frames: int | None = None,
               pulse: Sequence[float] | None = None, hooks: Sequence[FrameHook] = (),
               subject: Subject | None = None) -> StillPlan:
    """Frame, grade and scale ``image`` (RGB uint8, or a function that loads it) once,
    and set up the per-frame animator.

    ``frames`` overrides ``seconds * fps``; ``pulse`` (one value per frame, >= 0) zooms
    in a little more on loud frames (audio-reactive); ``hooks`` draw on each frame."""
    look = get_look(look) if isinstance(look, str) else look
    frames = frames if frames is not None else max(1, round(seconds * fps))
    top = _letterbox_bar(width, height, look, letterbox)
    pic_h = height - 2 * top
    with ThreadPoolExecutor(1) as pool:  # its thread starts only if something is submitted
        # The frame effects need only the sizes: made on the other core while the
        # photo is decoded (a 1080p grain field alone takes 25-33 ms).
        effects = (pool.submit(_frame_effects, look, width, height, pic_h, seed, watermark)
                   if look.grain > 0 or watermark else None)
        image = image() if callable(image) else image
        subject = subject or find_subject(image)
        framing = plan_framing(image.shape[1], image.shape[0], width / pic_h, subject)
        if anchor_to_subject:
            move = move.with_anchor(*framing.anchor)
        path = camera_path(move, frames)
        if pulse is not None:
            path = tuple(pulsed(vp, float(p)) for vp, p in zip(path, pulse))
        shake_px = look.shake * height
        margin = 1.0 + (2.5 * shake_px / min(width, pic_h) if shake_px else 0.0)
        zoom = max(vp.scale for vp in path) * margin
        k = canvas_scale(framing, (image.shape[1], image.shape[0]), (width, pic_h), zoom)
        canvas = compose_canvas(image, framing, render.even(width * k), render.even(pic_h * k))
        graded = grade(canvas, look)
        grain, overlay = effects.result() if effects is not None else (None, None)
    animator = render.StillAnimator(
        graded, width, height, path, top=top, shake=shake_offsets(frames, fps, seed, shake_px),
        vignette=look.vignette, grain=grain, overlay=overlay, zoom_margin=margin, hooks=hooks)
    return StillPlan(animator, frames, move, framing, subject)


def _frame_effects(look: Look, width: int, height: int, pic_h: int, seed: int,
                   watermark: str | None) -> tuple[Grain | None, render.Overlay | None]:
    """What ``plan_still`` draws on every frame besides the view: grain and watermark."""
    return (Grain(width, pic_h, look.grain, seed) if look.grain > 0 else None,
            render.text_overlay(watermark, width, height) if watermark else None)


def pulsed(vp: Viewport, amount: float) -> Viewport:
    """``vp`` zoomed in by ``amount`` (a fraction) about its own centre, kept inside."""
    scale = vp.scale * (1.0 + max(0.0, amount))
    slack = 0.5 - 0.5 / scale
    return Viewport(scale, min(0.5 + slack, max(0.5 - slack, vp.cx)),
                    min(0.5 + slack, max(0.5 - slack, vp.cy)))


def render_still_video(image: np.ndarray | Callable[[], np.ndarray], out_dir: Path, *,
                       width: int, height: int, fps: float, seconds: float,
                       look: Look | str, move: CameraMove,
                       ffmpeg: FFmpeg, seed: int = 0, watermark: str | None = None,
                       letterbox: bool | None = None, preset: str = "veryfast", crf: int = 20,
                       threads: int = 0, progress: Progress | None = None,
                       deadline: float | None = None, anchor_to_subject: bool = True,
                       name: str = "video", frames: int | None = None,
                       pulse: Sequence[float] | None = None, hooks: Sequence[FrameHook] = (),
                       audio: AudioTrack | None = None) -> RenderResult:
    """Render ``image`` (RGB uint8, or a function that loads it) to
    ``out_dir/<name>.mp4``, the poster ``<name>.jpg`` (the middle frame) and the
    spritesheet ``<name>-sprites.jpg``. ``progress`` may raise to stop the render. See
    ``plan_still`` for ``frames``, ``pulse``, ``hooks``."""
    total = frames if frames is not None else max(1, round(seconds * fps))
    planned: list[StillPlan] = []

    def animated() -> Iterator[np.ndarray]:
        # Loaded and planned on the first frame asked for, so ffmpeg starts meanwhile.
        if progress is not None:
            progress("analyzing", 0.0)
        planned.append(plan_still(
            image, width=width, height=height, fps=fps,
            seconds=seconds, look=look, move=move, seed=seed, watermark=watermark,
            letterbox=letterbox, anchor_to_subject=anchor_to_subject, frames=total,
            pulse=pulse, hooks=hooks))
        if progress is not None:
            progress("analyzing", 1.0)
        yield from planned[0].animator

    out_dir.mkdir(parents=True, exist_ok=True)
    thumbs = Thumbnails(total, width, height, fps)
    poster, sheet = out_dir / f"{name}.jpg", out_dir / f"{name}-sprites.jpg"
    video = render.encode_frames(ffmpeg, animated(), out_dir / f"{name}.mp4", width=width,
                                 height=height, fps=fps, total=total, preset=preset,
                                 crf=crf, threads=threads, progress=progress,
                                 deadline=deadline, audio=audio, on_frame=thumbs,
                                 on_end=functools.partial(thumbs.write, poster, sheet))
    plan, layout = planned[0], thumbs.layout
    assert layout is not None
    return RenderResult(video=video, poster=poster, spritesheet=sheet, sprites=layout,
                        width=width, height=height, fps=fps, frames=plan.frames,
                        seconds=plan.frames / fps, move=plan.move, framing=plan.framing,
                        subject=plan.subject)


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


def run_image_to_video(ctx: RenderContext, spec: JobSpec, inputs: dict[str, Any]
                       ) -> list[Artifact]:
    """One image_to_video job: the local mode runner."""
    opts = ImageToVideoOptions.parse(spec.options, seed=spec.seed)
    image_path = need(inputs, "image", "image_to_video")
    width, height = ctx.output_size(opts.quality, opts.aspect_ratio)
    image = functools.partial(load_image, image_path, needed=(width * 2, height * 2),
                              max_pixels=ctx.settings.limits.max_image_pixels)
    params = parse_prompt(opts.prompt, opts.style, opts.seed)
    result = render_still_video(
        image, ctx.workdir, width=width, height=height, fps=opts.fps, seconds=opts.duration,
        look=opts.style, move=params.move, ffmpeg=ctx.ffmpeg, seed=opts.seed,
        watermark=opts.watermark, letterbox=opts.letterbox, preset=ctx.preset,
        threads=ctx.threads, progress=ctx.progress, deadline=ctx.deadline)
    return still_artifacts(result, style=opts.style, seed=opts.seed,
                           prompt_words=params.words)


def still_artifacts(result: RenderResult, **meta: Any) -> list[Artifact]:
    """The artifacts of a still-based render (video, poster, spritesheet)."""
    rendered = Rendered(result.video, result.poster, result.spritesheet, result.sprites,
                        result.width, result.height, result.fps, result.frames,
                        {"camera": result.move.kind, "subject": result.subject.kind,
                         "framing": result.framing.mode, **meta})
    return rendered.artifacts()


DESCRIPTION = ("A still photo graded in one of eight looks with an eased, subject-aware "
               "camera move chosen from the prompt (5 or 10 s; 1080p for 5 s only).")


def output_seconds(options: dict[str, Any]) -> float:
    return float(options.get("duration") or 5)


def capability_options() -> dict[str, Any]:
    from ...media.looks import LOOK_DESCRIPTIONS
    from ...media.motion import MOTION_VOCABULARY

    return {
        "inputs": {"image": "required"},
        "prompt": {"type": "string", "description": "Steers the camera; see motion.",
                   "motion": MOTION_VOCABULARY},
        "style": {"values": list(STYLES), "default": "cinematic",
                  "descriptions": dict(LOOK_DESCRIPTIONS)},
        "duration": {"values": list(DURATIONS), "default": 5, "unit": "s"},
        "quality": {"values": list(QUALITIES), "default": "720p",
                    "rule": "1080p only with duration 5"},
        "aspect_ratio": {"values": list(ASPECT_RATIOS), "default": "16:9",
                         "description": "Framed around faces or the salient region; a "
                                        "blurred copy fills the rest when a crop would "
                                        "lose the subject."},
        "fps": {"values": list(FPS_VALUES), "default": 24},
        "seed": {"type": "integer", "default": 0,
                 "description": "Same seed and inputs give the same video."},
        "watermark": {"type": "string", "default": None,
                      "description": "Text drawn in the bottom-right corner."},
        "letterbox": {"type": "boolean", "default": None,
                      "description": "2.39:1 bars on landscape frames; default on for "
                                     "cinematic only."},
        "outputs": ["video", "poster", "spritesheet"],
    }
