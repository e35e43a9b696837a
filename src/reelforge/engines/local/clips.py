"""clips on the CPU: a long video becomes short, face-aware, captioned clips.

Stages (reported through ``progress``): downloading (a ``source_url``) → analyzing (one
low-resolution pass: cuts, faces, loudness, speech) → transcribing (faster-whisper, or
a transcript sent with the job) → rendering (one ffmpeg pass per clip: camera path,
blurred fill, burned-in captions, libx264).

Captions are ASS tracks written by ``media.captions``, burned in by libass where the
ffmpeg build has it, otherwise drawn from the same events by ``media.caption_overlay``
and laid over in the same pass; the manifest's ``pipeline.captions.renderer`` says
which (``libass`` or ``overlay``).

Outputs per clip: ``clip_NN.mp4``, a ``clip_NN.jpg`` poster and the ``clip_NN.ass``
caption track; and ``manifest.json`` in Clipora's shape. The engine cannot know URLs,
so the manifest holds file names (``"downloadUrl": "clip_01.mp4"``) for a dialect to
turn into links. Artifact names are the stored file stems: ``clip_01`` (mp4),
``clip_01_poster`` (jpg), ``clip_01_ass`` (ass), ``manifest`` (json), plus ``video`` and
``poster`` (the best clip) for generic clients; each artifact's ``meta["clipora_name"]``
is the Clipora file name (``clip_01.jpg``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import Invalid, ReelforgeError
from ...media import captions as cap
from ...media.caption_overlay import CaptionOverlay, precise_timing, render_overlay
from ...media import highlights as hl
from ...media.analysis import Analysis, analyse
from ...media.download import check_source_url, download
from ...media.ffmpeg import FFmpeg
from ...media.probe import MediaInfo, inspect_file
from ...media.reframe import plan_camera, poster, render_clip
from ...media.render import even, output_size
from ...media.transcript import Transcript, Word, make_transcriber, parse_transcript
from ..base import Artifact, JobSpec, Progress

log = logging.getLogger("reelforge.clips")

CLIP_MODES = ("ai", "none")
CLIP_ASPECTS = ("9:16", "1:1", "4:5", "16:9")
MAX_FPS = 30.0
AVOIDED_SPEAKERS = frozenset({"ai", "host", "interviewer", "narrator", "bot", "assistant"})

CLIPS_CAPABILITIES: dict[str, Any] = {
    "clip_mode": {"values": list(CLIP_MODES), "default": "ai", "aliases": ["mode"],
                  "description": "ai: pick the best moments; none: one clip of the whole "
                                 "(trimmed) source."},
    "num_clips": {"type": "integer", "min": 1, "max": 10, "default": 3,
                  "aliases": ["numClips"]},
    "clip_length": {"values": list(hl.CLIP_LENGTHS), "default": "medium",
                    "aliases": ["clipLength"],
                    "ranges": {k: list(v) for k, v in hl.CLIP_LENGTHS.items()}, "unit": "s"},
    "aspect_ratio": {"values": list(CLIP_ASPECTS), "default": "9:16",
                     "aliases": ["aspectRatio"]},
    "quality": {"values": ["720p", "1080p"], "default": "720p",
                "description": "Short side of the clips: 720 or 1080 px."},
    "caption_preset": {"values": list(cap.CAPTION_PRESETS), "default": "none",
                       "aliases": ["captionPreset"],
                       "descriptions": dict(cap.PRESET_DESCRIPTIONS)},
    "trim_start": {"type": "number", "default": 0, "unit": "s", "aliases": ["trimStart"]},
    "trim_end": {"type": "number", "default": None, "unit": "s", "aliases": ["trimEnd"]},
    "prompt": {"type": "string", "default": "",
               "description": "Focus words, e.g. 'moments about hiring'."},
    "genre": {"values": list(hl.GENRES), "default": "auto"},
    "auto_hook": {"type": "boolean", "default": True, "aliases": ["autoHook"],
                  "description": "Title, hook and hashtags by the configured LLM (heuristic "
                                 "without one)."},
    "remove_ai_voice": {"type": "boolean", "default": True, "aliases": ["removeAiVoice"],
                        "description": "Avoid turns of speakers labelled host/interviewer/AI "
                                       "in a transcript with speaker labels."},
    "transcript": {"type": "string", "default": None,
                   "description": "SRT, WebVTT or JSON words on the source's timeline; "
                                  "used instead of transcribing."},
    "language": {"type": "string", "default": None,
                 "description": "Spoken language (ISO 639-1) for the transcriber."},
    "source_url": {"type": "string", "default": None, "aliases": ["sourceUrl", "url"],
                   "description": "A video link (direct file, or a site page through "
                                  "yt-dlp) instead of an uploaded video."},
}


# --- options ------------------------------------------------------------------------------

def _get(raw: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in raw and raw[name] is not None and raw[name] != "":
            return raw[name]
    return None


def _bool(value: Any, name: str, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise Invalid(f"{name} must be true or false, got {value!r}.", fix=f"Send {name}: true.",
                  field=name)


def _seconds(value: Any, name: str) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise Invalid(f"{name} must be a number of seconds, got {value!r}.",
                      fix=f"Send {name} as seconds, e.g. 12.5.", field=name) from None
    if not 0 <= seconds < 1e6:
        raise Invalid(f"{name} must be 0 or more seconds.", fix=f"Send a positive {name}.",
                      field=name)
    return seconds


def _one_of(value: Any, name: str, allowed: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    text = str(value).strip().lower() if name != "aspect_ratio" else str(value).strip()
    if text not in allowed:
        raise Invalid(f"{name} {value!r} is not supported.",
                      fix=f"Use one of: {', '.join(allowed)}.", field=name)
    return text


def validate_clip_options(raw: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    """The clips mode's own options, camelCase (Clipora) or snake_case, cleaned.

    Registered with ``core.options.register_mode_options("clips", ...)``; raises
    ``Invalid`` naming the field and the fix.
    """
    out: dict[str, Any] = {}
    out["clip_mode"] = _one_of(_get(raw, "clip_mode", "mode"), "mode", CLIP_MODES, "ai")
    num = _get(raw, "num_clips", "numClips")
    try:
        count = 3 if num is None else int(num)
    except (TypeError, ValueError):
        count = -1
    if count < 1 or count > 10 or (num is not None and float(num) != count):
        raise Invalid(f"numClips must be a whole number from 1 to 10, got {num!r}.",
                      fix="Send numClips between 1 and 10.", field="num_clips")
    out["num_clips"] = count
    out["clip_length"] = _one_of(_get(raw, "clip_length", "clipLength"), "clip_length",
                                 tuple(hl.CLIP_LENGTHS), "medium")
    out["aspect_ratio"] = _one_of(_get(raw, "aspectRatio", "aspect_ratio"), "aspect_ratio",
                                  CLIP_ASPECTS, "9:16")
    out["caption_preset"] = _one_of(_get(raw, "caption_preset", "captionPreset"),
                                    "caption_preset", cap.CAPTION_PRESETS, "none")
    start = _seconds(_get(raw, "trim_start", "trimStart"), "trim_start") or 0.0
    end = _seconds(_get(raw, "trim_end", "trimEnd"), "trim_end")
    if end is not None and end <= start + 1.0:
        raise Invalid(f"trimEnd ({end:g} s) must be more than a second after trimStart "
                      f"({start:g} s).", fix="Send a trimEnd later than trimStart, or none.",
                      field="trim_end")
    out["trim_start"], out["trim_end"] = start, end
    out["genre"] = _one_of(_get(raw, "genre"), "genre", hl.GENRES, "auto")
    out["auto_hook"] = _bool(_get(raw, "auto_hook", "autoHook"), "auto_hook", True)
    out["remove_ai_voice"] = _bool(_get(raw, "remove_ai_voice", "removeAiVoice"),
                                   "remove_ai_voice", True)
    transcript = _get(raw, "transcript")
    if transcript is not None:
        parse_transcript(transcript)  # refuse a bad one at submit time, with its fix
        out["transcript"] = transcript if isinstance(transcript, str) else \
            json.dumps(transcript)
    language = _get(raw, "language")
    if language is not None:
        if not isinstance(language, str) or not language.isalpha() or len(language) > 3:
            raise Invalid(f"language {language!r} is not an ISO 639-1 code.",
                          fix="Send a code such as 'en', or leave it out to detect it.",
                          field="language")
        out["language"] = language.lower()
    url = _get(raw, "source_url", "sourceUrl", "url")
    if url is not None:
        out["source_url"] = check_source_url(url)
    out["prompt"] = str(common.get("prompt") or raw.get("prompt") or "")
    return out


def clips_output_seconds(options: dict[str, Any]) -> float:
    """Seconds of video the job will make, for its price: the middle of the clip length
    times the count; for mode none the trimmed span (60 s when it is not known yet)."""
    if options.get("clip_mode", options.get("mode")) == "none":
        end = options.get("trim_end")
        return float(end) - float(options.get("trim_start") or 0) if end else 60.0
    lo, hi = hl.CLIP_LENGTHS.get(options.get("clip_length") or "medium",
                                 hl.CLIP_LENGTHS["medium"])
    return int(options.get("num_clips") or 3) * (lo + hi) / 2


@dataclass(frozen=True)
class ClipOptions:
    clip_mode: str = "ai"
    num_clips: int = 3
    clip_length: str = "medium"
    aspect_ratio: str = "9:16"
    caption_preset: str = "none"
    trim_start: float = 0.0
    trim_end: float | None = None
    prompt: str = ""
    genre: str = "auto"
    auto_hook: bool = True
    remove_ai_voice: bool = True
    transcript: str | None = None
    language: str | None = None
    source_url: str | None = None
    quality: str = "720p"

    @classmethod
    def parse(cls, options: dict[str, Any]) -> ClipOptions:
        clean = validate_clip_options(options, options)
        return cls(**{k: v for k, v in clean.items() if k in cls.__dataclass_fields__},
                   quality=str(options.get("quality") or "720p"))


# --- the job --------------------------------------------------------------------------------

@dataclass
class _Notes:
    transcript_source: str = "none"
    transcript_reason: str | None = None
    language: str | None = None
    scorer: str = "heuristic"
    warnings: list[str] | None = None
    timings: dict[str, float] | None = None
    caption_reason: str | None = None
    caption_renderer: str | None = None  # libass | overlay, when captions were burned in

    def warn(self, text: str) -> None:
        self.warnings = (self.warnings or []) + [text]


def run_clips(spec: JobSpec, inputs: dict[str, Any], workdir: Path, progress: Progress, *,
              settings: Any, ffmpeg: FFmpeg) -> list[Artifact]:
    """Render a clips job; returns the artifacts (see the module docstring)."""
    opts = ClipOptions.parse(spec.options)
    deadline = time.monotonic() + float(getattr(settings, "job_timeout_s", 900.0))
    workdir.mkdir(parents=True, exist_ok=True)
    notes = _Notes(timings={})
    clock = time.monotonic()
    src = _source(opts, inputs, workdir, progress, settings, deadline)
    info = _probe(src, settings)
    notes.timings["downloading"] = round(time.monotonic() - clock, 2)
    start, end = _trim(opts, info)
    clock = time.monotonic()
    progress("analyzing", 0.0)
    analysis = analyse(src, workdir / "analysis", start=start, end=end,
                       progress=lambda f: progress("analyzing", f))
    progress("analyzing", 1.0)
    notes.timings["analyzing"] = round(time.monotonic() - clock, 2)
    clock = time.monotonic()
    transcript = _transcript(opts, analysis, settings, progress, notes)
    notes.timings["transcribing"] = round(time.monotonic() - clock, 2)
    windows = _choose(opts, analysis, transcript, settings, notes)
    clock = time.monotonic()
    rendered = _render_all(opts, windows, analysis, transcript, src, info, workdir, ffmpeg,
                           settings, progress, deadline)
    notes.timings["rendering"] = round(time.monotonic() - clock, 2)
    renderers = sorted({r.renderer for r in rendered if r.renderer})
    notes.caption_renderer = "+".join(renderers) or None
    if opts.caption_preset != "none" and transcript is not None and not renderers:
        notes.caption_reason = "no transcript words fall inside the clips"
    manifest = build_manifest(spec.job_id, info.duration, opts, rendered, notes,
                              captions_possible=transcript is not None)
    manifest_path = workdir / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    return _artifacts(rendered, manifest_path, manifest)


def _source(opts: ClipOptions, inputs: dict[str, Any], workdir: Path, progress: Progress,
            settings: Any, deadline: float) -> Path:
    video = inputs.get("video")
    if video is not None:
        return Path(video)
    if not opts.source_url:
        raise Invalid("The clips mode needs a video: an upload or a source_url.",
                      fix="Upload the video as the 'video' field, or pass source_url.",
                      field="video")
    progress("downloading", 0.0)
    path = download(opts.source_url, workdir / "download", settings=settings,
                    progress=lambda f: progress("downloading", f), deadline=deadline)
    progress("downloading", 1.0)
    return path


def _probe(src: Path, settings: Any) -> MediaInfo:
    facts = inspect_file(src, settings.limits, expect={"video"})
    info = facts.info
    if not isinstance(info, MediaInfo) or not info.has_video:
        raise Invalid("The source has no video stream.",
                      fix="Send a video file (MP4, MOV, MKV or WebM).", field="video")
    return info


def _trim(opts: ClipOptions, info: MediaInfo) -> tuple[float, float]:
    duration = info.duration
    start = opts.trim_start
    end = min(opts.trim_end, duration) if opts.trim_end else duration
    if start >= duration - 1.0:
        raise Invalid(f"trimStart ({start:g} s) is at or past the end of the video "
                      f"({duration:.1f} s).", fix="Use a trimStart inside the video.",
                      field="trim_start")
    return start, end


def _transcript(opts: ClipOptions, analysis: Analysis, settings: Any, progress: Progress,
                notes: _Notes) -> Transcript | None:
    if opts.transcript:
        notes.transcript_source = "provided"
        return parse_transcript(opts.transcript)
    if opts.clip_mode == "none" and opts.caption_preset == "none":
        notes.transcript_reason = "not needed: mode none without captions"
        return None
    if analysis.audio_path is None:
        notes.transcript_reason = "the source has no audio"
        return None
    transcriber, why = make_transcriber(getattr(settings, "transcriber", "auto"),
                                        getattr(settings, "whisper_model", "small"),
                                        bool(getattr(settings, "whisper_download", True)))
    if transcriber is None:
        notes.transcript_reason = why
        return None
    progress("transcribing", 0.0)
    try:
        result = transcriber.transcribe(analysis.load_audio(), language=opts.language,
                                        progress=lambda f: progress("transcribing", f))
    except ReelforgeError:
        raise  # cancelled, lease lost, timed out: stop the job
    except Exception as exc:  # a model that will not load must not sink the clips
        log.warning("transcription failed: %s", exc)
        notes.transcript_reason = f"{transcriber.name} failed: {type(exc).__name__}: {exc}"
        return None
    progress("transcribing", 1.0)
    notes.transcript_source, notes.language = transcriber.name, result.language
    if not result.words:
        notes.transcript_reason = "no speech was recognised"
        return None
    return result.shifted(analysis.start)


def _choose(opts: ClipOptions, analysis: Analysis, transcript: Transcript | None,
            settings: Any, notes: _Notes) -> list[hl.Window]:
    avoid = AVOIDED_SPEAKERS if opts.remove_ai_voice else frozenset()
    if opts.remove_ai_voice and transcript and not any(w.speaker for w in transcript.words):
        notes.warn("removeAiVoice: no speaker labels in the transcript, so no turns "
                   "were removed")
    if opts.clip_mode == "none":
        whole = [hl.Window(analysis.start, analysis.end, "whole")]
        return hl.score(whole, analysis, transcript, opts.prompt, opts.genre)
    lo, hi = hl.CLIP_LENGTHS[opts.clip_length]
    found = hl.score(hl.candidates(analysis, transcript, lo, hi), analysis, transcript,
                     opts.prompt, opts.genre, avoid_speakers=avoid)
    found = _llm(found, opts, settings, notes)
    chosen = hl.select(found, opts.num_clips)
    if len(chosen) < opts.num_clips:
        notes.warn(f"only {len(chosen)} non-overlapping {opts.clip_length} clip(s) fit in "
                   f"{analysis.duration:.0f} s of source")
    return chosen


def _llm(found: list[hl.Window], opts: ClipOptions, settings: Any,
         notes: _Notes) -> list[hl.Window]:
    base = getattr(settings, "llm_base_url", "")
    if not base or not found:
        return found
    shortlist = hl.select(found, max(opts.num_clips * 3, 6))
    try:
        scorer = hl.LLMScorer(base, getattr(settings, "llm_api_key", ""),
                              getattr(settings, "llm_model", ""))
        rated = hl.apply_llm(shortlist, scorer.rate(shortlist, opts.prompt, opts.genre))
    except Exception as exc:  # never required: fall back to the heuristic
        log.warning("LLM scoring failed: %s", exc)
        notes.warn(f"LLM scoring failed ({type(exc).__name__}); heuristic scores used")
        return found
    notes.scorer = "llm"
    if not opts.auto_hook:
        rated = [hl.Window(w.start, w.end, w.snap, w.text, w.opening, w.parts, w.score)
                 for w in rated]
    return rated


@dataclass(frozen=True)
class _Rendered:
    index: int
    window: hl.Window
    video: Path
    poster: Path
    ass: Path | None
    width: int
    height: int
    renderer: str | None  # how the captions were burned in: libass | overlay (None: not)
    layouts: tuple[str, ...]

    @property
    def captioned(self) -> bool:
        return self.renderer is not None


def _render_all(opts: ClipOptions, windows: list[hl.Window], analysis: Analysis,
                transcript: Transcript | None, src: Path, info: MediaInfo, workdir: Path,
                ffmpeg: FFmpeg, settings: Any, progress: Progress,
                deadline: float) -> list[_Rendered]:
    width, height = _size(opts, settings)
    fps = min(analysis.fps or MAX_FPS, MAX_FPS)
    preset = getattr(settings, "x264_preset", "veryfast")
    total = sum(w.duration for w in windows) or 1.0
    done = 0.0
    out: list[_Rendered] = []
    libass, precise = _caption_support(ffmpeg)
    progress("rendering", 0.0)
    for k, w in enumerate(windows, start=1):
        name = f"clip_{k:02d}"
        track = None
        words = []
        if transcript is not None:
            words = [Word(x.start - w.start, x.end - w.start, x.text, x.speaker)
                     for x in transcript.window(w.start, w.end)]
        if words:
            preset_name = opts.caption_preset if opts.caption_preset != "none" else "karaoke"
            track = cap.write_ass(words, preset_name, width, height, workdir / f"{name}.ass",
                                  aspect_ratio=opts.aspect_ratio)
        burn: cap.CaptionTrack | CaptionOverlay | None = None
        if track is not None and opts.caption_preset != "none":
            burn = track if libass else render_overlay(track, workdir / f"{name}_captions",
                                                       precise=precise)
        path = plan_camera(analysis, w.start, w.end, width, height, fps)
        span = w.duration

        def tick(f: float, base: float = done, span: float = span) -> None:
            progress("rendering", min(1.0, (base + f * span) / total))

        video = render_clip(ffmpeg, src, workdir / f"{name}.mp4", start=w.start,
                            duration=span, path=path, out_w=width, out_h=height,
                            captions=burn, has_audio=info.has_audio, src_fps=analysis.fps,
                            workdir=workdir, preset=preset, on_progress=tick,
                            deadline=deadline)
        still = poster(ffmpeg, video, workdir / f"{name}.jpg", _poster_time(w, words),
                       deadline=deadline)
        done += span
        renderer = None if burn is None else "libass" if burn is track else "overlay"
        out.append(_Rendered(k, w, video, still, track.path if track else None, width, height,
                             renderer, tuple(sorted(path.layouts))))
    progress("rendering", 1.0)
    return out


def _caption_support(ffmpeg: FFmpeg) -> tuple[bool, bool]:
    """Whether this ffmpeg burns ASS in (libass), and whether it times caption overlays
    to the millisecond (see ``caption_overlay.precise_timing``)."""
    try:
        features = ffmpeg.features()
    except ReelforgeError:
        return False, True
    return features.has_libass, precise_timing(features.version)


def _poster_time(w: hl.Window, words: list[Any]) -> float:
    """A moment in the first second or two, on a word when there are words."""
    t = min(1.0, w.duration / 3)
    if words:
        t = min(max(t, words[0].start + 0.1), w.duration / 2)
    return t


def _size(opts: ClipOptions, settings: Any) -> tuple[int, int]:
    w, h = output_size(opts.quality if opts.quality in ("720p", "1080p") else "720p",
                       opts.aspect_ratio)
    scale = float(getattr(settings, "render_scale", 1.0) or 1.0)
    return (even(w * scale), even(h * scale)) if scale != 1.0 else (w, h)


# --- manifest and artifacts ----------------------------------------------------------------

def build_manifest(job_id: str, duration: float, opts: ClipOptions, rendered: list[_Rendered],
                   notes: _Notes, *, captions_possible: bool) -> dict[str, Any]:
    """Clipora's manifest (``GET /api/clips/{jobId}``), with file names for URLs, plus a
    ``pipeline`` object saying how it was made and why anything is missing."""
    clips = []
    for r in rendered:
        w = r.window
        meta = hl.heuristic_metadata(w, opts.prompt, opts.genre)
        if opts.auto_hook:
            meta.update(w.meta)
        meta["viral_score"] = w.score
        name = f"clip_{r.index:02d}"
        clips.append({
            "index": r.index, "start": round(w.start, 2), "end": round(w.end, 2),
            "duration": round(w.duration, 2), "score": w.score, "transcript": w.text,
            "downloadUrl": f"{name}.mp4", "posterUrl": f"{name}.jpg",
            "aspectRatio": opts.aspect_ratio, "metadata": meta,
            "assUrl": f"{name}.ass" if r.ass else None,
            "width": r.width, "height": r.height, "boundary": w.snap, "scores": w.parts,
            "layouts": list(r.layouts),
        })
    if opts.caption_preset == "none":
        caption_reason = "captionPreset is none"
    elif not captions_possible:
        caption_reason = f"no transcript: {notes.transcript_reason}"
    else:
        caption_reason = notes.caption_reason
    return {
        "jobId": job_id, "duration": round(duration, 2), "clipCount": len(clips),
        "clips": clips,
        "pipeline": {
            "mode": opts.clip_mode,
            "captions": {"preset": opts.caption_preset,
                         "burned": caption_reason is None, "reason": caption_reason,
                         "renderer": notes.caption_renderer,
                         "note": _caption_note(notes.caption_renderer)},
            "transcript": {"source": notes.transcript_source, "language": notes.language,
                           "reason": notes.transcript_reason},
            "scorer": notes.scorer, "warnings": notes.warnings or [],
            "timings": notes.timings or {},
        },
    }


def _caption_note(renderer: str | None) -> str | None:
    if renderer is not None and "overlay" in renderer:
        return ("this ffmpeg has no libass: the captions were drawn as overlays from the "
                "same caption events; the .ass tracks are there to burn in or play beside "
                "the clips")
    return None


def _artifacts(rendered: list[_Rendered], manifest_path: Path,
               manifest: dict[str, Any]) -> list[Artifact]:
    out: list[Artifact] = []
    for r, clip in zip(rendered, manifest["clips"]):
        name = f"clip_{r.index:02d}"
        meta = {"index": r.index, "start": clip["start"], "end": clip["end"],
                "duration": clip["duration"], "score": clip["score"], "width": r.width,
                "height": r.height, "captions": r.captioned, "caption_renderer": r.renderer}
        out.append(Artifact(name, r.video, "video/mp4", {**meta, "clipora_name": f"{name}.mp4"}))
        out.append(Artifact(f"{name}_poster", r.poster, "image/jpeg",
                            {"index": r.index, "clipora_name": f"{name}.jpg"}))
        if r.ass is not None:
            out.append(Artifact(f"{name}_ass", r.ass, "text/x-ssa",
                                {"index": r.index, "clipora_name": f"{name}.ass"}))
    if rendered:
        best = rendered[0]
        out.insert(0, Artifact("poster", best.poster, "image/jpeg",
                               {"width": best.width, "height": best.height}))
        out.insert(0, Artifact("video", best.video, "video/mp4",
                               {"width": best.width, "height": best.height,
                                "duration": round(best.window.duration, 2), "codec": "h264",
                                "clips": len(rendered)}))
    out.append(Artifact("manifest", manifest_path, "application/json",
                        {"clipora_name": "manifest.json", "clips": len(rendered)}))
    return out
