"""The clips job end to end at engine level: real ffmpeg, espeak-ng speech, a provided
transcript; manifest shape; mode none; no transcriber; URL sources; refusals."""

from __future__ import annotations

import json
import re
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from reelforge.engines.base import JobSpec
from reelforge.engines.local import clips as clips_mod
from reelforge.engines.local.clips import (CLIPS_CAPABILITIES, clips_output_seconds, run_clips,
                                           validate_clip_options)
from reelforge.errors import Invalid, ReelforgeError
from reelforge.media.transcript import Transcriber, Transcript, Word, parse_transcript

from .test_captions import parse_ass, plain


class Stages:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.values: list[tuple[str, float]] = []

    def __call__(self, stage: str, fraction: float) -> None:
        assert 0.0 <= fraction <= 1.0
        if not self.seen or self.seen[-1] != stage:
            self.seen.append(stage)
        self.values.append((stage, fraction))


def job(raw: dict[str, Any], **common: Any) -> JobSpec:
    options = {"prompt": raw.get("prompt", ""), "quality": "720p", **common}
    options.update(validate_clip_options(raw, options))
    return JobSpec("job123", "clips", options)


def check_manifest(m: dict[str, Any]) -> None:
    """Clipora's documented shape (GET /api/clips/{jobId})."""
    assert isinstance(m["jobId"], str) and isinstance(m["duration"], (int, float))
    assert m["clipCount"] == len(m["clips"])
    for k, clip in enumerate(m["clips"], start=1):
        for key, kind in (("index", int), ("start", (int, float)), ("end", (int, float)),
                          ("duration", (int, float)), ("score", (int, float)),
                          ("transcript", str), ("downloadUrl", str), ("posterUrl", str),
                          ("aspectRatio", str), ("metadata", dict)):
            assert isinstance(clip[key], kind), (key, clip[key])
        assert clip["index"] == k
        assert clip["downloadUrl"] == f"clip_{k:02d}.mp4"
        assert clip["posterUrl"] == f"clip_{k:02d}.jpg"
        assert clip["end"] > clip["start"]
        assert abs(clip["duration"] - (clip["end"] - clip["start"])) < 0.02
        assert 0 <= clip["score"] <= 10
        meta = clip["metadata"]
        for key, kind in (("title", str), ("viral_hook", str), ("key_insight", str),
                          ("dominant_emotion", str), ("hashtags", list),
                          ("viral_score", (int, float))):
            assert isinstance(meta[key], kind), (key, meta)
        assert all(isinstance(t, str) for t in meta["hashtags"])


def video_facts(path: Path) -> tuple[int, int, float, bool]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return (v.codec_context.width, v.codec_context.height,
                float(c.duration / av.time_base), bool(c.streams.audio))


def test_ai_clips_with_karaoke_captions(talk, tmp_path: Path, clip_settings, ffmpeg) -> None:
    stages = Stages()
    spec = job({"numClips": 2, "clipLength": "short", "captionPreset": "karaoke",
                "transcript": talk.transcript, "prompt": "hiring", "genre": "podcast"})
    arts = run_clips(spec, {"video": talk.path}, tmp_path / "out", stages,
                     settings=clip_settings, ffmpeg=ffmpeg)
    names = [a.name for a in arts]
    assert names == ["video", "poster", "clip_01", "clip_01_poster", "clip_01_ass", "clip_02",
                     "clip_02_poster", "clip_02_ass", "manifest"]
    assert {a.path.name for a in arts if a.name.startswith("clip_")} == {
        "clip_01.mp4", "clip_01.jpg", "clip_01.ass", "clip_02.mp4", "clip_02.jpg", "clip_02.ass"}
    by = {a.name: a for a in arts}
    assert by["clip_01_poster"].meta["clipora_name"] == "clip_01.jpg"
    assert stages.seen == ["analyzing", "rendering"]  # no download, transcript provided
    manifest = json.loads(by["manifest"].path.read_text())
    check_manifest(manifest)
    assert manifest["jobId"] == "job123" and manifest["clipCount"] == 2
    assert manifest["pipeline"]["transcript"]["source"] == "provided"
    assert manifest["pipeline"]["captions"]["burned"] is True
    assert manifest["pipeline"]["captions"]["renderer"] == "libass"
    words = parse_transcript(talk.transcript).words
    for clip in manifest["clips"]:
        assert 3 <= clip["duration"] <= 15 + 0.01
        assert clip["boundary"] == "sentence"
        # the clip starts and ends on sentence boundaries: no word is cut
        assert not any(w.start < clip["start"] < w.end or w.start < clip["end"] < w.end
                       for w in words)
        name = clip["downloadUrl"][:-4]
        w, h, dur, audio = video_facts(by[name].path)
        assert (w, h) == (360, 640) and audio and dur == pytest.approx(clip["duration"], abs=0.1)
        # caption events are the transcript's words, on the clip's clock
        inside = [x for x in words if clip["start"] <= (x.start + x.end) / 2 < clip["end"]]
        events = parse_ass(by[f"{name}_ass"].path)
        shown = " ".join(plain(e[4]) for e in events).split()
        assert shown == [x.text for x in inside]
        starts = []
        for start, _end, _, _, text in events:
            t = start
            for cs in re.findall(r"\\k(\d+)", text):
                starts.append(t)
                t += int(cs) / 100
        assert np.allclose(starts, [x.start - clip["start"] for x in inside], atol=0.011)
        assert clip["transcript"].split() == [x.text for x in inside]
    with av.open(str(by["clip_01_poster"].path)) as c:
        assert c.streams.video[0].codec_context.name == "mjpeg"
    assert by["video"].path == by["clip_01"].path


def test_mode_none_is_one_clip_of_the_trimmed_source(talk, tmp_path: Path, clip_settings,
                                                     ffmpeg) -> None:
    spec = job({"mode": "none", "trimStart": 2, "trimEnd": 9.5, "aspectRatio": "1:1",
                "captionPreset": "beasty", "transcript": talk.transcript})
    arts = run_clips(spec, {"video": talk.path}, tmp_path / "out", Stages(),
                     settings=clip_settings, ffmpeg=ffmpeg)
    manifest = json.loads(next(a for a in arts if a.name == "manifest").path.read_text())
    check_manifest(manifest)
    (clip,) = manifest["clips"]
    assert (clip["start"], clip["end"], clip["aspectRatio"]) == (2.0, 9.5, "1:1")
    w, h, dur, _ = video_facts(next(a for a in arts if a.name == "clip_01").path)
    assert (w, h) == (360, 360) and dur == pytest.approx(7.5, abs=0.1)
    assert manifest["duration"] == pytest.approx(talk.seconds, abs=0.1)


def test_no_transcriber_still_makes_clips_and_says_why(talk, tmp_path: Path, clip_settings,
                                                       ffmpeg) -> None:
    spec = job({"numClips": 1, "clipLength": "short", "captionPreset": "mozi"})
    arts = run_clips(spec, {"video": talk.path}, tmp_path / "out", Stages(),
                     settings=clip_settings, ffmpeg=ffmpeg)
    manifest = json.loads(next(a for a in arts if a.name == "manifest").path.read_text())
    check_manifest(manifest)
    pipeline = manifest["pipeline"]
    assert pipeline["captions"]["burned"] is False
    assert "no transcript" in pipeline["captions"]["reason"]
    assert "turned off" in pipeline["transcript"]["reason"]
    assert not [a for a in arts if a.name.endswith("_ass")]
    assert manifest["clips"][0]["boundary"] in ("pause", "scene", "grid")


class ScriptedTranscriber(Transcriber):
    """The transcriber interface, answering with the words the speech was made from."""

    name = "scripted"

    def __init__(self, words: list[Word]) -> None:
        self.words = words
        self.audio_seconds = 0.0

    def transcribe(self, audio: np.ndarray, *, language: str | None = None,
                   progress: Any = None) -> Transcript:
        self.audio_seconds = len(audio) / 16000
        if progress:
            progress(0.5)
        return Transcript(tuple(self.words), language=language or "en", source=self.name)


def test_url_source_and_transcriber_run_through_every_stage(talk, tmp_path: Path,
                                                            clip_settings, ffmpeg,
                                                            monkeypatch) -> None:
    words = parse_transcript(talk.transcript).words
    trim = 3.0
    # the transcriber hears the trimmed audio, on its own clock from 0
    local = [Word(w.start - trim, w.end - trim, w.text) for w in words if w.start >= trim]
    scripted = ScriptedTranscriber(local)
    monkeypatch.setattr(clips_mod, "make_transcriber", lambda *a, **k: (scripted, ""))
    handler = partial(SimpleHTTPRequestHandler, directory=str(talk.path.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/{talk.path.name}"
        stages = Stages()
        spec = job({"source_url": url, "numClips": 1, "clipLength": "short",
                    "captionPreset": "beasty", "trimStart": trim, "language": "en"})
        arts = run_clips(spec, {}, tmp_path / "out", stages, settings=clip_settings,
                         ffmpeg=ffmpeg)
    finally:
        server.shutdown()
        server.server_close()
    assert stages.seen == ["downloading", "analyzing", "transcribing", "rendering"]
    assert scripted.audio_seconds == pytest.approx(talk.seconds - trim, abs=0.1)
    manifest = json.loads(next(a for a in arts if a.name == "manifest").path.read_text())
    assert manifest["pipeline"]["transcript"] == {"source": "scripted", "language": "en",
                                                  "reason": None}
    clip = manifest["clips"][0]
    assert clip["start"] >= trim
    inside = [w for w in words if clip["start"] <= (w.start + w.end) / 2 < clip["end"]]
    ass = next(a for a in arts if a.name == "clip_01_ass").path
    events = parse_ass(ass)
    assert events[0][0] == pytest.approx(inside[0].start - clip["start"], abs=0.006)


def test_url_source_refused_by_the_address_guard(tmp_path: Path, clip_settings, ffmpeg) -> None:
    clip_settings.trusted_networks = []
    spec = job({"source_url": "http://127.0.0.1:9/video.mp4"})
    with pytest.raises(ReelforgeError) as err:
        run_clips(spec, {}, tmp_path / "out", Stages(), settings=clip_settings, ffmpeg=ffmpeg)
    assert err.value.code == "unsafe_url" and err.value.fix


@pytest.mark.parametrize("raw, field", [
    ({"numClips": 11}, "num_clips"), ({"numClips": 2.5}, "num_clips"),
    ({"clipLength": "huge"}, "clip_length"), ({"aspectRatio": "4:3"}, "aspect_ratio"),
    ({"captionPreset": "comic"}, "caption_preset"), ({"mode": "magic"}, "mode"),
    ({"trimStart": 10, "trimEnd": 5}, "trim_end"), ({"trimStart": -1}, "trim_start"),
    ({"genre": "opera"}, "genre"), ({"autoHook": "maybe"}, "auto_hook"),
    ({"transcript": "hello there"}, "transcript"), ({"source_url": "ftp://x/y.mp4"}, "source_url"),
    ({"language": "english!"}, "language"),
])
def test_bad_options_are_refused_with_a_fix(raw: dict, field: str) -> None:
    with pytest.raises(Invalid) as err:
        validate_clip_options(raw, {})
    assert err.value.extra.get("field") == field and err.value.fix


def test_options_accept_both_spellings_and_default_like_clipora() -> None:
    camel = validate_clip_options({"mode": "none", "numClips": "4", "clipLength": "long",
                                   "aspectRatio": "4:5", "captionPreset": "mozi",
                                   "trimStart": "1.5", "autoHook": "false",
                                   "removeAiVoice": False}, {})
    snake = validate_clip_options({"clip_mode": "none", "num_clips": 4, "clip_length": "long",
                                   "aspect_ratio": "4:5", "caption_preset": "mozi",
                                   "trim_start": 1.5, "auto_hook": False,
                                   "remove_ai_voice": False}, {})
    assert camel == snake
    defaults = validate_clip_options({}, {"aspect_ratio": "16:9"})
    assert (defaults["clip_mode"], defaults["num_clips"], defaults["clip_length"],
            defaults["aspect_ratio"], defaults["caption_preset"], defaults["auto_hook"],
            defaults["remove_ai_voice"], defaults["genre"]) == (
        "ai", 3, "medium", "9:16", "none", True, True, "auto")
    assert clips_output_seconds(defaults) == pytest.approx(3 * 32.5)
    assert clips_output_seconds({"clip_mode": "none", "trim_start": 5, "trim_end": 25}) == 20
    assert set(CLIPS_CAPABILITIES) >= {"clip_mode", "num_clips", "clip_length", "aspect_ratio",
                                       "caption_preset", "trim_start", "trim_end", "genre",
                                       "auto_hook", "remove_ai_voice", "transcript", "source_url"}


def test_corrupt_and_unsupported_videos_get_a_clear_error(talk, tmp_path: Path, clip_settings,
                                                          ffmpeg) -> None:
    broken = tmp_path / "broken.mp4"
    data = talk.path.read_bytes()
    broken.write_bytes(data[:4096])  # the header survives, the media does not
    text = tmp_path / "page.mp4"
    text.write_text("<!doctype html><html><body>not a video</body></html>")
    for path, code in ((broken, "invalid"), (text, "unsupported_media")):
        with pytest.raises(ReelforgeError) as err:
            run_clips(job({}), {"video": path}, tmp_path / "out", Stages(),
                      settings=clip_settings, ffmpeg=ffmpeg)
        assert err.value.code == code and err.value.fix, err.value.message
    with pytest.raises(Invalid) as err:
        run_clips(job({"trimStart": 500}), {"video": talk.path}, tmp_path / "out", Stages(),
                  settings=clip_settings, ffmpeg=ffmpeg)
    assert "trimStart" in err.value.message
    with pytest.raises(Invalid) as err:
        run_clips(job({}), {}, tmp_path / "out", Stages(), settings=clip_settings,
                  ffmpeg=ffmpeg)
    assert "source_url" in err.value.fix


def test_an_ffmpeg_without_libass_draws_the_captions_as_overlays(
        talk, tmp_path: Path, clip_settings, monkeypatch) -> None:
    from dataclasses import replace

    from reelforge.media.ffmpeg import FFmpeg, find_ffmpeg

    plain_ffmpeg = FFmpeg(find_ffmpeg())
    real = plain_ffmpeg.features()
    monkeypatch.setattr(plain_ffmpeg, "features", lambda: replace(real, has_libass=False))
    spec = job({"mode": "none", "trimEnd": 5, "captionPreset": "beasty",
                "transcript": talk.transcript})
    arts = run_clips(spec, {"video": talk.path}, tmp_path / "out", Stages(),
                     settings=clip_settings, ffmpeg=plain_ffmpeg)
    by = {a.name: a for a in arts}
    manifest = json.loads(by["manifest"].path.read_text())
    captions = manifest["pipeline"]["captions"]
    assert captions["burned"] is True and captions["reason"] is None
    assert captions["renderer"] == "overlay" and "libass" in captions["note"]
    assert by["clip_01"].meta["captions"] is True
    assert by["clip_01"].meta["caption_renderer"] == "overlay"
    assert "clip_01_ass" in by  # the .ass track is kept all the same
    # the captions are in the picture: beasty's red spoken word, in the caption band,
    # while the first word is spoken and not before it
    first = parse_transcript(talk.transcript).words[0]
    with av.open(str(by["clip_01"].path)) as c:
        frames = [(f.time, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]

    def red(at: float) -> int:
        _, img = min(frames, key=lambda f: abs(f[0] - at))
        band = img[int(img.shape[0] * 0.5):int(img.shape[0] * 0.76)].astype(int)
        return int(((band[..., 0] > 200) & (band[..., 1] < 60) & (band[..., 2] < 60)).sum())

    assert red((first.start + first.end) / 2) > 50
    assert red(first.start - 0.15) < 10
