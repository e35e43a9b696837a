"""The faster-whisper transcriber for real, with a tiny random-weight model built in
the test (no download): loading from a folder, VAD, decoding and word alignment run,
and the clips job uses what it returns. The words are gibberish by construction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reelforge.engines.base import JobSpec
from reelforge.engines.local.clips import run_clips, validate_clip_options
from reelforge.media.analysis import analyse
from reelforge.media.transcript import FasterWhisperTranscriber, make_transcriber

pytest.importorskip("faster_whisper", reason="faster-whisper is an optional extra")
pytest.importorskip("ctranslate2")

from .tiny_whisper import build_tiny_whisper  # noqa: E402


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny")


@pytest.fixture(autouse=True)
def greedy(monkeypatch) -> None:
    """No temperature fallback: random weights would otherwise sample differently on
    each run (the production default falls back to sampling on bad windows)."""
    monkeypatch.setattr(FasterWhisperTranscriber, "temperatures", (0.0,))


def test_faster_whisper_transcribes_with_word_times(tiny_model: Path, talk, tmp_path) -> None:
    transcriber, why = make_transcriber("auto", str(tiny_model), False)
    assert isinstance(transcriber, FasterWhisperTranscriber) and why == ""
    audio = analyse(talk.path, tmp_path, end=8.0).load_audio()
    seen: list[float] = []
    result = transcriber.transcribe(audio, language="en", progress=seen.append)
    assert result.source == "faster-whisper" and result.language == "en"
    assert result.words, "the tiny model always says something"
    for w in result.words:
        assert 0.0 <= w.start <= w.end <= 8.0 + 0.05
    assert [w.start for w in result.words] == sorted(w.start for w in result.words)
    assert seen and all(0.0 <= f <= 1.0 for f in seen)


def test_clips_job_uses_the_transcriber(tiny_model: Path, talk, tmp_path, clip_settings,
                                        ffmpeg) -> None:
    clip_settings.transcriber = "faster-whisper"
    clip_settings.whisper_model = str(tiny_model)
    clip_settings.whisper_download = False
    opts = {"quality": "720p", "prompt": ""}
    opts.update(validate_clip_options({"mode": "none", "trimStart": 1, "trimEnd": 7,
                                       "captionPreset": "karaoke", "language": "en"}, opts))
    stages: list[str] = []
    arts = run_clips(JobSpec("w1", "clips", opts), {"video": talk.path}, tmp_path / "out",
                     lambda s, f: stages.append(s) if not stages or stages[-1] != s else None,
                     settings=clip_settings, ffmpeg=ffmpeg)
    assert stages == ["analyzing", "transcribing", "rendering"]
    manifest = json.loads(next(a for a in arts if a.name == "manifest").path.read_text())
    pipeline = manifest["pipeline"]
    assert pipeline["transcript"]["source"] == "faster-whisper"
    assert pipeline["captions"]["burned"] is True
    assert any(a.name == "clip_01_ass" for a in arts)
