"""Each local mode end to end through the real HTTP API (upload, submit, wait,
download), on one server with SQLite at render_scale 0.25."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from reelforge.media import segment
from reelforge.media.audio import SAMPLE_RATE, write_wav
from reelforge.media.ffmpeg import find_ffmpeg

from ..conftest import LiveServer, make_jpeg, make_settings, wait_for


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("api")
    server = LiveServer(make_settings(tmp, f"sqlite:///{tmp / 'reelforge.db'}",
                                      render_scale=0.25))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def key(live: LiveServer) -> str:
    return live.account("modes", plan="enterprise", credits=100_000)[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inputs")
    out = {"a": make_jpeg(d / "a.jpg", (960, 640)), "b": make_jpeg(d / "b.jpg", (640, 960))}
    t = np.arange(int(2.0 * SAMPLE_RATE)) / SAMPLE_RATE
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * (np.sin(2 * np.pi * 2 * t) > 0))
    pcm = (tone * 32767).astype("<i2")
    out["audio"] = write_wav(d / "voice.wav", np.stack([pcm, pcm], axis=1))
    subprocess.run([find_ffmpeg(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=s=320x180:r=24:d=2", "-f", "lavfi", "-i", "sine=f=330:d=2",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", str(d / "clip.mp4")], check=True)
    out["video"] = d / "clip.mp4"
    return out


def finish(live: LiveServer, key: str, r) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == 201, r.text
    with live.client(key) as c:
        done = wait_for(c, r.json()["id"], timeout=90)
    assert done["status"] == "succeeded", done
    assert {"video", "poster", "spritesheet"} <= set(done["outputs"])
    return done


def download(live: LiveServer, key: str, job: dict, tmp: Path, name: str = "video") -> Path:
    with live.client(key) as c:
        body = c.get(f"/v1/jobs/{job['id']}/artifacts/{name}")
    assert body.status_code == 200
    path = tmp / f"{job['id']}-{name}"
    path.write_bytes(body.content)
    return path


def probe(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        facts = {"size": (v.codec_context.width, v.codec_context.height),
                 "frames": sum(1 for _ in c.decode(video=0)), "audio": bool(c.streams.audio)}
    return facts


def test_engines_publish_modes_and_vocabulary(live: LiveServer, key: str) -> None:
    with live.client(key) as c:
        engines = c.get("/v1/engines").json()
    local = next(e for e in (engines.get("engines") or engines.get("data") or [])
                 if e.get("name", e.get("engine")) == "local")
    options = local["options"]
    assert {"image_to_video", "image_audio_to_video", "reel", "video_to_video",
            "extend"} <= set(options)
    assert "zoom_in" in options["image_to_video"]["prompt"]["motion"]["moves"]
    assert "golden_hour" in options["video_to_video"]["prompt"]["vocabulary"]["relight"]
    assert "camera move" in options["extend"]["description"]


def test_image_audio_to_video_over_http(live: LiveServer, key: str, files: dict[str, Path],
                                        tmp_path: Path) -> None:
    with live.client(key) as c:
        r = c.post("/v1/jobs", data={"mode": "image_audio_to_video", "audio_reactive": "pulse",
                                     "transcript": "Hello there. Welcome to the show.",
                                     "style": "dreamy"},
                   files={"image": ("a.jpg", files["a"].read_bytes(), "image/jpeg"),
                          "audio": ("voice.wav", files["audio"].read_bytes(), "audio/wav")})
        quote = c.post("/v1/estimate", json={"mode": "image_audio_to_video",
                                             "audio_seconds": 2}).json()
    assert quote["output_seconds"] == 2
    done = finish(live, key, r)
    assert "captions" in done["outputs"]
    facts = probe(download(live, key, done, tmp_path))
    assert facts == {"size": (320, 180), "frames": 48, "audio": True}


def test_reel_over_http(live: LiveServer, key: str, files: dict[str, Path],
                        tmp_path: Path) -> None:
    images = [("images", (f"{n}.jpg", files[n].read_bytes(), "image/jpeg"))
              for n in ("a", "b", "a")]
    with live.client(key) as c:
        r = c.post("/v1/jobs", data={"mode": "reel", "duration": "3", "style": "energetic",
                                     "aspect_ratio": "9:16"}, files=images)
    done = finish(live, key, r)
    assert done["outputs"]["video"]["images"] == 3
    assert len(done["outputs"]["video"]["cuts"]) == 2
    assert probe(download(live, key, done, tmp_path)) == {"size": (180, 320), "frames": 72,
                                                          "audio": False}


def test_video_to_video_then_extend_over_http(live: LiveServer, key: str,
                                              files: dict[str, Path], tmp_path: Path) -> None:
    with live.client(key) as c:
        r = c.post("/v1/jobs", data={"mode": "video_to_video", "transform_style": "restyle",
                                     "prompt": "comic book style in the rain"},
                   files={"video": ("clip.mp4", files["video"].read_bytes(), "video/mp4")})
    done = finish(live, key, r)
    assert done["outputs"]["video"]["restyle"] == "comic"
    styled = download(live, key, done, tmp_path)
    assert probe(styled) == {"size": (320, 180), "frames": 48, "audio": True}
    with live.client(key) as c:
        r = c.post("/v1/jobs", data={"mode": "extend", "duration": "1"},
                   files={"video": ("styled.mp4", styled.read_bytes(), "video/mp4")})
    extended = finish(live, key, r)
    assert extended["outputs"]["video"]["extended_seconds"] == 1.0
    # quality "source": the styled video's own 180-line size, quartered again
    assert probe(download(live, key, extended, tmp_path)) == {"size": (80, 44), "frames": 72,
                                                              "audio": True}


def test_background_is_refused_at_submit_without_a_model(
        live: LiveServer, key: str, files: dict[str, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segment, "PACKAGES", ("no_such_package_here",))
    with live.client(key) as c:
        r = c.post("/v1/jobs", data={"mode": "video_to_video", "transform_style": "background"},
                   files={"video": ("clip.mp4", files["video"].read_bytes(), "video/mp4")})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "model_missing" and "pip install" in error["fix"]
