"""image_audio_to_video (seed 001): a still that moves slowly for as long as the audio
plays, with an optional audio-reactive pulse or spectrum strip, and captions from a
transcript.

The length is the audio's, capped by ``max_duration`` (default 60 s, the smallest
plan's cap) and by ``audio_seconds`` when a client sent it. The cost is estimated
before the audio is read, from that cap, so the estimate is an upper bound. Audio is
normalised to -16 LUFS and encoded as AAC; the video has exactly as many frames as the
audio spans (see ``media/audio.py``), so the two stay in sync.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

from ...media.audio import frame_loudness, prepare_audio, spectrum_bars
from ...media.prompt import VOCABULARY, parse_prompt
from ...media.render import AudioTrack, FrameHook
from ...media.timed_text import CaptionTrack, parse_transcript, speech_span, to_webvtt
from ...media.visuals import SpectrumStrip
from ..base import ASPECT_RATIOS, QUALITIES, STYLES, Artifact, JobSpec
from .context import RenderContext, need
from .image_to_video import FPS_VALUES, load_image, render_still_video, still_artifacts

DESCRIPTION = ("A still with a slow camera move for as long as the audio plays (capped by "
               "max_duration), AAC audio normalised to -16 LUFS, an optional pulse or "
               "spectrum strip, and captions from a transcript.")
DEFAULT_CAP = 60.0
PULSE = 0.03  # the loudest frame zooms in 3% more
SLOW = 0.35  # the slow move's intensity ceiling


def output_seconds(options: dict[str, Any]) -> float:
    cap = float(options.get("max_duration") or DEFAULT_CAP)
    hint = options.get("audio_seconds")
    return min(cap, float(hint)) if hint else cap


def run_image_audio(ctx: RenderContext, spec: JobSpec, inputs: dict[str, Any]
                    ) -> list[Artifact]:
    opts = spec.options
    image_path = need(inputs, "image", spec.mode)
    audio_path = need(inputs, "audio", spec.mode)
    style = opts.get("style") or "cinematic"
    fps = int(opts.get("fps") or 24)
    seed = int(opts.get("seed", spec.seed) or 0)
    width, height = ctx.output_size(opts.get("quality") or "720p",
                                    opts.get("aspect_ratio") or "16:9")
    ctx.progress("analyzing", 0.0)
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    audio = prepare_audio(ctx.ffmpeg, audio_path, ctx.workdir / "audio.wav", fps=fps,
                          max_seconds=output_seconds(opts), deadline=ctx.deadline)
    ctx.progress("analyzing", 0.4)
    loudness = frame_loudness(audio.mono, audio.rate, fps, audio.frames)
    hooks: list[FrameHook] = []
    reactive = opts.get("audio_reactive") or "none"
    strip_top = 0
    if reactive == "waveform":
        strip = SpectrumStrip(spectrum_bars(audio.mono, audio.rate, fps, audio.frames),
                              width, height)
        hooks.append(strip)
        strip_top = height - strip.y0
    cues = []
    if opts.get("transcript"):
        cues = parse_transcript(opts["transcript"], audio.seconds,
                                speech_span(loudness, fps))
        hooks.append(CaptionTrack(cues, width, height, fps, bottom_margin=strip_top + 4))
    params = parse_prompt(opts.get("prompt") or "", style, seed)
    move = replace(params.move, intensity=min(params.move.intensity, SLOW), easing="gentle")
    image = functools.partial(load_image, image_path, needed=(width * 2, height * 2),
                              max_pixels=ctx.settings.limits.max_image_pixels)
    ctx.progress("analyzing", 0.8)
    letterbox = opts.get("letterbox", False)  # bars would crowd captions and the strip
    result = render_still_video(
        image, ctx.workdir, width=width, height=height, fps=fps, seconds=audio.seconds,
        look=style, move=move, ffmpeg=ctx.ffmpeg, seed=seed,
        watermark=opts.get("watermark"), letterbox=letterbox, preset=ctx.preset,
        threads=ctx.threads, progress=ctx.progress, deadline=ctx.deadline,
        frames=audio.frames, pulse=PULSE * loudness if reactive == "pulse" else None,
        hooks=hooks, audio=AudioTrack(audio.path))
    artifacts = still_artifacts(result, style=style, seed=seed, audio_reactive=reactive,
                                audio_seconds=round(audio.source_seconds, 3),
                                loudness_target="-16 LUFS", captions=len(cues),
                                prompt_words=params.words)
    if cues:
        vtt = ctx.workdir / "captions.vtt"
        vtt.write_text(to_webvtt(cues), encoding="utf-8")
        artifacts.append(Artifact("captions", vtt, "text/vtt", {"cues": len(cues)}))
    return artifacts


def capability_options() -> dict[str, Any]:
    return {
        "inputs": {"image": "required", "audio": "required"},
        "prompt": {"type": "string", "vocabulary": {"camera": VOCABULARY["camera"],
                                                    "speed": VOCABULARY["speed"]},
                   "description": "Camera words pick the slow move."},
        "style": {"values": list(STYLES), "default": "cinematic"},
        "quality": {"values": list(QUALITIES), "default": "720p"},
        "aspect_ratio": {"values": list(ASPECT_RATIOS), "default": "16:9"},
        "fps": {"values": list(FPS_VALUES), "default": 24},
        "max_duration": {"type": "number", "default": DEFAULT_CAP, "min": 1, "max": 600,
                         "unit": "s", "description": "The video lasts as long as the "
                         "audio, up to this (and up to the plan's limit). The cost is "
                         "estimated from it."},
        "audio_seconds": {"type": "number", "default": None,
                          "description": "Optional: the audio's length, if known; "
                                         "the estimate (and the cap) use it."},
        "audio_reactive": {"values": ["none", "pulse", "waveform"], "default": "none"},
        "transcript": {"type": "string", "default": None,
                       "description": "Captions: SRT, WebVTT, JSON [{start, end, text}] "
                                      "or plain text (timed over the speech)."},
        "watermark": {"type": "string", "default": None},
        "letterbox": {"type": "boolean", "default": False},
        "audio": {"codec": "aac", "loudness": "-16 LUFS integrated, peaks under -1.5 dBFS"},
        "outputs": ["video", "poster", "spritesheet", "captions (with a transcript)"],
    }
