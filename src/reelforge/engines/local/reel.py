"""reel (Qamera): 1–10 images, each with its own camera move, joined by transitions,
over an optional audio track whose beats place the cuts.

The length is ``duration`` (default 15 s), or ``seconds_per_image`` times the number
of images; an audio track shorter than that shortens the reel to the audio. The length
is split evenly across the images, then each cut moves to the nearest beat (when there
is audio and ``beat_sync``). Each image is framed, graded and animated by the same
still pipeline as image_to_video, only while it is on screen; transitions are blended
in the frame pipe, centred on the cut.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ...media import transitions
from ...media.audio import PreparedAudio, prepare_audio
from ...media.beats import cut_times, find_beats
from ...media.looks import get_look
from ...media.motion import CameraMove, parse_motion
from ...media.prompt import VOCABULARY, names_move, parse_prompt
from ...media.render import AudioTrack, StillAnimator, text_overlay
from ..base import ASPECT_RATIOS, QUALITIES, STYLES, Artifact, JobSpec
from .context import RenderContext, encode, need
from .image_to_video import FPS_VALUES, load_image, plan_still

DESCRIPTION = ("1–10 images, each with its own camera move, joined by crossfade, slide, "
               "zoom or wipe transitions; with an audio track the cuts fall on its beats.")
DEFAULT_SECONDS = 15.0
MAX_IMAGES_FOR_ESTIMATE = 10
# The order moves are dealt in when the prompt names none (no move twice in a row).
MOVE_CYCLE = ("push_in", "pan_right", "zoom_out", "pan_left", "zoom_in", "drift", "pan_up",
              "pan_down")
TRANSITION_SECONDS = {"energetic": 0.3, "dramatic": 0.45, "dreamy": 0.9, "luxury": 0.8}
AUTO_TRANSITIONS = {"energetic": ("slide", "zoom", "wipe"), "dramatic": ("zoom", "crossfade")}


def output_seconds(options: dict[str, Any]) -> float:
    """The requested length; for ``seconds_per_image`` the number of images is not
    known before the images are read, so ``image_count`` (else 10) bounds it."""
    per_image = options.get("seconds_per_image")
    if per_image:
        count = int(options.get("image_count") or MAX_IMAGES_FOR_ESTIMATE)
        return float(per_image) * count
    return float(options.get("duration") or DEFAULT_SECONDS)


@dataclass(frozen=True)
class Segment:
    index: int
    start: int  # first frame on screen (transition in included)
    end: int  # one past the last frame on screen
    move: CameraMove


@dataclass(frozen=True)
class ReelPlan:
    frames: int
    fps: float
    cuts: tuple[int, ...]  # frame where each transition is half done
    transition_frames: int
    kinds: tuple[str, ...]  # one transition per cut
    segments: tuple[Segment, ...]
    beats: tuple[float, ...] = ()

    def active(self, frame: int) -> list[Segment]:
        return [s for s in self.segments if s.start <= frame < s.end]


def reel_moves(count: int, prompt: str, style: str, seed: int) -> list[CameraMove]:
    """A move per image: the prompt's for the first (when it names one), then the
    cycle, shuffled by the seed, never the same kind twice in a row."""
    base = parse_prompt(prompt, style, seed).move
    rng = random.Random(f"reel:{style}:{seed}")
    moves = []
    previous = base.kind if names_move(prompt) else None
    if previous is not None:
        moves.append(base)
    while len(moves) < count:
        options = [k for k in MOVE_CYCLE if k != previous]
        kind = options[rng.randrange(len(options))]
        style_move = parse_motion("", style, seed + len(moves))
        moves.append(replace(style_move, kind=kind, intensity=base.intensity,
                             easing=base.easing))
        previous = kind
    return moves


def plan_reel(count: int, frames: int, fps: float, *, style: str, prompt: str, seed: int,
              transition: str = "auto", beats: Sequence[float] = ()) -> ReelPlan:
    """Where each image starts and ends, and how each cut looks."""
    total = frames / fps
    cut_s = cut_times(total, count, beats, min_len=min(1.0, total / count * 0.6))
    cuts = tuple(int(round(c * fps)) for c in cut_s)
    kinds = _transition_kinds(count - 1, transition, prompt, style, seed)
    shortest = min(np.diff([0, *cuts, frames])) if count > 1 else frames
    t_frames = int(round(TRANSITION_SECONDS.get(style, 0.6) * fps))
    t_frames = max(2, min(t_frames, int(shortest * 0.45))) // 2 * 2
    moves = reel_moves(count, prompt, style, seed)
    segments = []
    bounds = [0, *cuts, frames]
    for k in range(count):
        start = 0 if k == 0 else bounds[k] - t_frames // 2
        end = frames if k == count - 1 else bounds[k + 1] + t_frames // 2
        segments.append(Segment(k, max(0, start), min(frames, end), moves[k]))
    return ReelPlan(frames, fps, cuts, t_frames, kinds, tuple(segments), tuple(beats))


def _transition_kinds(n: int, transition: str, prompt: str, style: str,
                      seed: int) -> tuple[str, ...]:
    if transition == "auto":
        named = parse_prompt(prompt, style, seed).transition
        if named:
            transition = named
    if transition != "auto":
        return (transition,) * n
    pool = AUTO_TRANSITIONS.get(style, ("crossfade",))
    offset = random.Random(f"transitions:{seed}").randrange(len(pool))
    return tuple(pool[(offset + k) % len(pool)] for k in range(n))


class ReelFrames:
    """yuv420p frames of a planned reel. Each image is framed and graded on a helper
    thread while the image before it is on screen (so the encoder never waits for a new
    image's set-up), and dropped when it leaves: at most three are held at once."""

    def __init__(self, images: Sequence[Path], plan: ReelPlan, width: int, height: int, *,
                 style: str, seed: int, watermark: str | None, letterbox: bool | None,
                 max_pixels: int | None) -> None:
        self.images, self.plan = list(images), plan
        self.width, self.height = width, height
        self.style, self.seed, self.letterbox = style, seed, letterbox
        self.max_pixels = max_pixels
        self.overlay = text_overlay(watermark, width, height) if watermark else None
        self._live: dict[int, StillAnimator] = {}
        self._ahead: dict[int, Future[StillAnimator]] = {}
        self._pool: ThreadPoolExecutor | None = None
        size = width * height * 3 // 2
        self._held = np.empty(size, np.uint8)
        self._out = np.empty(size, np.uint8)

    def __len__(self) -> int:
        return self.plan.frames

    def _prepare(self, seg: Segment) -> StillAnimator:
        image = load_image(self.images[seg.index], needed=(self.width * 2, self.height * 2),
                           max_pixels=self.max_pixels)
        return plan_still(image, width=self.width, height=self.height, fps=self.plan.fps,
                          seconds=0, frames=seg.end - seg.start, look=get_look(self.style),
                          move=seg.move, seed=self.seed + seg.index,
                          letterbox=self.letterbox).animator

    def _animator(self, seg: Segment) -> StillAnimator:
        live = self._live.get(seg.index)
        if live is None:
            ahead = self._ahead.pop(seg.index, None)
            live = ahead.result() if ahead is not None else self._prepare(seg)
            self._live[seg.index] = live
            following = seg.index + 1
            if following < len(self.plan.segments) and following not in self._ahead:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(1, thread_name_prefix="reel-prepare")
                self._ahead[following] = self._pool.submit(
                    self._prepare, self.plan.segments[following])
        return live

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            yield from self._frames()
        finally:  # finished, failed or cancelled: no set-up left running
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
            self._ahead.clear()

    def _frames(self) -> Iterator[np.ndarray]:
        plan = self.plan
        for f in range(plan.frames):
            active = plan.active(f)
            for index in [k for k in self._live if all(s.index != k for s in active)]:
                del self._live[index]  # gone from the screen: free its canvas
            first = active[0]
            frame = self._animator(first).frame(f - first.start)
            if len(active) > 1:
                second = active[1]
                np.copyto(self._held, frame)
                incoming = self._animator(second).frame(f - second.start)
                cut = plan.cuts[first.index]
                t = (f - (cut - plan.transition_frames / 2) + 0.5) / plan.transition_frames
                frame = transitions.blend(plan.kinds[first.index], self._held, incoming, t,
                                          self.width, self.height, self._out)
            if self.overlay is not None:
                if frame is not self._out:
                    np.copyto(self._out, frame)
                    frame = self._out
                self.overlay.blend(self._planes(frame))
            yield frame

    def _planes(self, buffer: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from ...media.render import planes_of

        return planes_of(buffer, self.width, self.height)


def run_reel(ctx: RenderContext, spec: JobSpec, inputs: dict[str, Any]) -> list[Artifact]:
    opts = spec.options
    images = need(inputs, "images", "reel")
    images = list(images) if isinstance(images, (list, tuple)) else [images]
    style = opts.get("style") or "cinematic"
    fps = int(opts.get("fps") or 24)
    seed = int(opts.get("seed", spec.seed) or 0)
    width, height = ctx.output_size(opts.get("quality") or "720p",
                                    opts.get("aspect_ratio") or "16:9")
    per_image = opts.get("seconds_per_image")
    total = float(per_image) * len(images) if per_image else float(
        opts.get("duration") or DEFAULT_SECONDS)
    frames = max(len(images), round(total * fps))
    ctx.progress("analyzing", 0.0)
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    audio: PreparedAudio | None = None
    beats: tuple[float, ...] = ()
    tempo = 0.0
    if inputs.get("audio"):
        audio = prepare_audio(ctx.ffmpeg, inputs["audio"], ctx.workdir / "audio.wav", fps=fps,
                              max_seconds=frames / fps, fade_out=1.0, deadline=ctx.deadline)
        frames = min(frames, audio.frames)
        if audio.frames != frames:  # longer than the reel by rounding: fit it exactly
            audio = prepare_audio(ctx.ffmpeg, inputs["audio"], ctx.workdir / "audio.wav",
                                  fps=fps, max_seconds=frames / fps, frames=frames,
                                  fade_out=1.0, deadline=ctx.deadline)
        if opts.get("beat_sync", True):
            found = find_beats(audio.mono, audio.rate)
            beats, tempo = found.times, found.tempo
    ctx.progress("analyzing", 1.0)
    plan = plan_reel(len(images), frames, fps, style=style, prompt=opts.get("prompt") or "",
                     seed=seed, transition=opts.get("transition") or "auto", beats=beats)
    source = ReelFrames(images, plan, width, height, style=style, seed=seed,
                        watermark=opts.get("watermark"), letterbox=opts.get("letterbox"),
                        max_pixels=ctx.settings.limits.max_image_pixels)
    first = plan.segments[0]
    rendered = encode(
        ctx, source, width=width, height=height, fps=fps, total=frames,
        audio=AudioTrack(audio.path) if audio else None,
        poster_index=(first.start + min(first.end, plan.cuts[0] if plan.cuts else frames)) // 2,
        meta={"style": style, "seed": seed, "images": len(images),
              "cuts": [round(c / fps, 4) for c in plan.cuts], "transitions": list(plan.kinds),
              "moves": [s.move.kind for s in plan.segments], "beat_synced": bool(beats),
              "tempo": round(tempo, 1)})
    return rendered.artifacts()


def capability_options() -> dict[str, Any]:
    return {
        "inputs": {"images": "required, 1–10", "audio": "optional"},
        "prompt": {"type": "string", "vocabulary": {
            "camera": VOCABULARY["camera"], "speed": VOCABULARY["speed"],
            "transition": VOCABULARY["transition"]},
            "description": "A camera word sets the first image's move; the rest vary."},
        "style": {"values": list(STYLES), "default": "cinematic"},
        "duration": {"type": "number", "min": 3, "max": 60, "default": DEFAULT_SECONDS,
                     "unit": "s", "description": "Total length, split across the images."},
        "seconds_per_image": {"type": "number", "min": 1, "max": 10, "default": None,
                              "description": "Instead of duration. The estimate uses "
                                             "image_count (else 10 images)."},
        "image_count": {"type": "integer", "min": 1, "max": 10, "default": None},
        "transition": {"values": ["auto", *transitions.KINDS], "default": "auto",
                       "description": "auto: the style chooses (crossfades; energetic "
                                      "slides, zooms and wipes)."},
        "beat_sync": {"type": "boolean", "default": True,
                      "description": "With audio, cuts land on its beats."},
        "quality": {"values": list(QUALITIES), "default": "720p"},
        "aspect_ratio": {"values": list(ASPECT_RATIOS), "default": "16:9"},
        "fps": {"values": list(FPS_VALUES), "default": 24},
        "watermark": {"type": "string", "default": None},
        "letterbox": {"type": "boolean", "default": None},
        "outputs": ["video", "poster", "spritesheet"],
    }
