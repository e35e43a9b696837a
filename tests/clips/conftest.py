"""Media for the clips tests, generated once per session (lavfi, scikit-image's
astronaut photo, espeak-ng), and settings that need no database."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from reelforge.config import Settings
from reelforge.media.ffmpeg import FFmpeg, find_ffmpeg

from .synth import SENTENCES, Shot, espeak_available, make_video, speak_words

SIZE = (640, 360)


def _need_photo() -> None:
    pytest.importorskip("skimage", reason="scikit-image ships the face photo the tests use")


@dataclass(frozen=True)
class Source:
    path: Path
    shots: list[Shot]
    seconds: float
    words: list[dict] | None = None

    @property
    def transcript(self) -> str:
        return json.dumps(self.words)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips_media")


@pytest.fixture(scope="session")
def ffmpeg() -> FFmpeg:
    return FFmpeg(find_ffmpeg())


@pytest.fixture(scope="session")
def moving_face(media_dir: Path) -> Source:
    """A face sliding left to right across a wide frame, then a hard cut at 4.5 s to a
    new background with the face standing still at the left."""
    _need_photo()
    shots = [Shot(0.0, "face", fx=0.22, vx=0.12), Shot(4.5, "face", fx=0.2, bg=1)]
    return Source(make_video(media_dir / "moving_face.mp4", shots, 7.0, size=SIZE), shots, 7.0)


@pytest.fixture(scope="session")
def slide_then_face(media_dir: Path) -> Source:
    _need_photo()
    shots = [Shot(0.0, "slide"), Shot(2.5, "face", fx=0.6)]
    return Source(make_video(media_dir / "slide_face.mp4", shots, 5.0, size=SIZE), shots, 5.0)


@pytest.fixture(scope="session")
def two_speakers(media_dir: Path) -> Source:
    """Two faces far apart; the left one talks for 6 s, then the right one."""
    _need_photo()
    shots = [Shot(0.0, "two", talker=0), Shot(6.0, "two", talker=1)]
    return Source(make_video(media_dir / "two.mp4", shots, 12.0, size=SIZE), shots, 12.0)


@pytest.fixture(scope="session")
def talk(media_dir: Path) -> Source:
    """espeak-ng speech with exactly known word timings over a talking head with cuts."""
    _need_photo()
    if not espeak_available():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    words = speak_words(SENTENCES[:10], media_dir / "talk.wav")
    seconds = round(words[-1]["end"] + 0.6, 2)
    shots = [Shot(0.0, "face", fx=0.35, sway=0.02), Shot(14.0, "face", fx=0.62, bg=1),
             Shot(24.0, "slide"), Shot(27.0, "face", fx=0.45, bg=2)]
    path = make_video(media_dir / "talk.mp4", shots, seconds, size=SIZE,
                      audio=media_dir / "talk.wav")
    return Source(path, shots, seconds, words)


@pytest.fixture
def clip_settings(tmp_path: Path) -> Settings:
    """Settings for engine-level runs: no database, small renders, no transcriber."""
    return Settings(data_dir=tmp_path / "data", transcriber="none", render_scale=0.5,
                    x264_preset="ultrafast", trusted_networks=["127.0.0.1/32"])
