"""The hosted-provider engines (``runway``, ``openai``) over real HTTP on loopback.

Two kinds of provider stand in for the real ones (which need the network and a paid
key): a live reelforge server, whose ``/runway`` and ``/openai`` dialects speak those
APIs (its local engine renders image_to_video, and refuses text_to_video), and a small
fake provider written here that plays each API's task lifecycle with a clip made by
ffmpeg, and records what our clients send. Nothing is mocked.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import subprocess
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import av
import pytest

from reelforge.config import Settings
from reelforge.core.options import normalize_options
from reelforge.engines.base import Artifact, JobSpec
from reelforge.engines.providers import (HostedEngine, OpenAIEngine, RunwayEngine,
                                         openai_seconds, openai_size, runway_ratio,
                                         runway_seconds)
from reelforge.engines.registry import build_engines, how_to_enable
from reelforge.errors import EngineError, Invalid, JobCancelled
from reelforge.media.ffmpeg import find_ffmpeg

from ..conftest import LiveServer, make_jpeg, make_settings, wait_for
from .test_local_image_to_video import top_level_boxes

KEY = "fake-provider-key"
FAST = dict(render_scale=0.25, provider_poll_s=0.05, provider_timeout_s=10)


# ------------------------------------------------------------------ helpers

def engine_settings(tmp: Path, **overrides: Any) -> Settings:
    return Settings(**{"data_dir": tmp / "data", **FAST, **overrides})  # type: ignore[arg-type]


class Recorder:
    """A ``Progress`` that records every call; raises ``stop_at``'s error on that call."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.calls: list[tuple[str, float]] = []
        self.stop_at = stop_at

    def __call__(self, stage: str, fraction: float) -> None:
        self.calls.append((stage, fraction))
        if self.stop_at is not None and len(self.calls) >= self.stop_at:
            raise JobCancelled("The job was cancelled.")

    @property
    def stages(self) -> list[str]:
        return list(dict.fromkeys(stage for stage, _ in self.calls))


def run(engine: HostedEngine, mode: str, raw: dict[str, Any], workdir: Path,
        inputs: dict[str, Any] | None = None, progress: Any = None) -> dict[str, Artifact]:
    opts = normalize_options(mode, raw)
    engine.output_seconds(mode, opts)  # what submission checks first
    arts = engine.run(JobSpec("job_test", mode, opts, seed=int(opts.get("seed", 0))),
                      inputs or {}, workdir, progress or Recorder())
    return {a.name: a for a in arts}


def check_video(arts: dict[str, Artifact], size: tuple[int, int], seconds: float,
                fps: float = 24) -> None:
    """Our output contract: H.264 yuv420p BT.709, faststart, the size, exactly the
    duration, a poster and a spritesheet."""
    video = arts["video"]
    with av.open(str(video.path)) as container:
        stream = container.streams.video[0]
        cc = stream.codec_context
        frames = sum(1 for _ in container.decode(video=0))
        assert (cc.name, cc.pix_fmt, (cc.width, cc.height)) == ("h264", "yuv420p", size)
        assert (cc.color_primaries, cc.color_trc, cc.colorspace) == (1, 1, 1)  # BT.709
        assert float(stream.average_rate) == fps
    assert frames == round(seconds * fps) == video.meta["frames"]
    assert video.meta["duration"] == seconds
    boxes = top_level_boxes(video.path)
    assert boxes.index("moov") < boxes.index("mdat")
    for name in ("poster", "spritesheet"):
        assert arts[name].path.is_file() and arts[name].path.read_bytes()[:2] == b"\xff\xd8"


def make_clip(path: Path, seconds: float, size: str = "640x360") -> Path:
    subprocess.run([find_ffmpeg(""), "-y", "-v", "error", "-f", "lavfi", "-i",
                    f"testsrc2=s={size}:r=24:d={seconds}", "-f", "lavfi", "-i",
                    f"sine=f=440:d={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], check=True)
    return path


# ------------------------------------------------------------------ a fake provider

class FakeProvider:
    """Runway's task API under ``/v1`` (text_to_video, image_to_video, tasks) and
    OpenAI's Videos API under ``/v1/videos``, on 127.0.0.1, with clips made by ffmpeg.

    Every task goes PENDING → RUNNING → SUCCEEDED (queued → in_progress → completed),
    one step per poll. ``fail`` makes tasks fail, ``throttle`` answers the first creates
    429, ``clip_seconds`` serves a clip of another length than asked for, ``output_host``
    puts Runway's output on another host name."""

    def __init__(self, clips: Path) -> None:
        self.clips = clips
        self.requests: list[dict[str, Any]] = []
        self.tasks: dict[str, dict[str, Any]] = {}
        self.fail: tuple[str, str] | None = None
        self.throttle = 0
        self.clip_seconds: float | None = None
        self.output_host: str | None = None
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                outer.handle(self, "POST")

            def do_DELETE(self) -> None:  # noqa: N802
                outer.handle(self, "DELETE")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def seen(self, method: str, prefix: str = "") -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method
                and r["path"].startswith(prefix)]

    # --- plumbing

    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        body = h.rfile.read(int(h.headers.get("content-length") or 0))
        record = {"method": method, "path": parts.path, "query": parts.query,
                  "headers": {k.lower(): v for k, v in h.headers.items()}, "body": body}
        with self._lock:
            self.requests.append(record)
            status, payload, headers = self.route(record)
        if isinstance(payload, Path):
            data, kind = payload.read_bytes(), "video/mp4"
        elif payload is None:
            data, kind = b"", "text/plain"
        else:
            data, kind = json.dumps(payload).encode(), "application/json"
        h.send_response(status)
        for name, value in {"Content-Type": kind, "Content-Length": str(len(data)),
                            **headers}.items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(data)

    def clip(self, seconds: float) -> Path:
        seconds = self.clip_seconds or seconds
        path = self.clips / f"clip-{seconds:g}.mp4"
        if not path.exists():
            make_clip(path, seconds)
        return path

    # --- the two APIs

    def route(self, r: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        path, method = r["path"], r["method"]
        if path.startswith("/files/"):
            return 200, self.clip(float(path.rsplit("-", 1)[1].removesuffix(".mp4"))), {}
        if r["headers"].get("authorization") != f"Bearer {KEY}":
            return 401, {"error": {"message": "Incorrect API key provided.",
                                   "code": "invalid_api_key"}}, {}
        if path.startswith("/v1/videos"):
            return self.openai(r, method, path)
        if r["headers"].get("x-runway-version") != "2024-11-06":
            return 400, {"error": "X-Runway-Version header is missing"}, {}
        if method == "POST" and path in ("/v1/text_to_video", "/v1/image_to_video"):
            if self.throttle:
                self.throttle -= 1
                return 429, {"error": "Too many requests"}, {"Retry-After": "1"}
            body = json.loads(r["body"])
            task = self.new_task(str(uuid.uuid4()), body["duration"])
            return 200, {"id": task["id"]}, {}
        task_id = path.rsplit("/", 1)[-1]
        task = self.tasks.get(task_id)
        if task is None or not path.startswith("/v1/tasks/"):
            return 404, {"error": "Not found"}, {}
        if method == "DELETE":
            task["cancelled"] = True
            return 204, None, {}
        status = self.advance(task, ("PENDING", "RUNNING", "SUCCEEDED"))
        if status == "RUNNING":
            return 200, {"id": task_id, "status": status, "progress": 0.5}, {}
        if status == "SUCCEEDED" and self.fail:
            return 200, {"id": task_id, "status": "FAILED", "failure": self.fail[0],
                         "failureCode": self.fail[1]}, {}
        if status == "SUCCEEDED":
            host = self.output_host or "127.0.0.1"
            return 200, {"id": task_id, "status": status, "output": [
                f"http://{host}:{self.port}/files/{task_id}-{task['seconds']:g}.mp4"]}, {}
        return 200, {"id": task_id, "status": status}, {}

    def openai(self, r: dict[str, Any], method: str, path: str) -> tuple[int, Any, dict]:
        if method == "POST" and path == "/v1/videos":
            fields = multipart(r["headers"]["content-type"], r["body"])
            r["fields"] = fields
            task = self.new_task(f"video_{uuid.uuid4().hex}", float(fields["seconds"]))
            return 200, self.video(task, "queued"), {}
        task_id = path.split("/")[3]
        task = self.tasks.get(task_id)
        if task is None:
            return 404, {"error": {"message": "Video not found", "code": "not_found"}}, {}
        if method == "DELETE":
            task["cancelled"] = True
            return 200, {"id": task_id, "object": "video.deleted", "deleted": True}, {}
        if path.endswith("/content"):
            return 200, self.clip(task["seconds"]), {}
        status = self.advance(task, ("queued", "in_progress", "completed"))
        if status == "completed" and self.fail:
            return 200, {**self.video(task, "failed"), "error": {
                "code": self.fail[1], "message": self.fail[0]}}, {}
        return 200, self.video(task, status), {}

    def new_task(self, task_id: str, seconds: float) -> dict[str, Any]:
        task = {"id": task_id, "seconds": seconds, "polls": 0, "cancelled": False}
        self.tasks[task["id"]] = task
        return task

    @staticmethod
    def advance(task: dict[str, Any], states: tuple[str, ...]) -> str:
        task["polls"] += 1
        return states[min(task["polls"], len(states)) - 1]

    @staticmethod
    def video(task: dict[str, Any], status: str) -> dict[str, Any]:
        return {"id": task["id"], "object": "video", "status": status,
                "progress": {"queued": 0, "in_progress": 40}.get(status, 100),
                "seconds": f"{task['seconds']:g}", "error": None}


def multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """A multipart/form-data body's fields (text) and files (bytes, with filename)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    out: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        filename = part.get_filename()
        out[name] = (filename, part.get_content_type(), data) if filename else data.decode()
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture
def fake(clips: Path) -> Iterator[FakeProvider]:
    provider = FakeProvider(clips)
    yield provider
    provider.httpd.shutdown()


def runway(tmp: Path, base_url: str, key: str = KEY, **overrides: Any) -> RunwayEngine:
    engine = RunwayEngine.from_settings(engine_settings(
        tmp, runway_api_key=key, runway_base_url=base_url, **overrides))
    assert engine is not None
    return engine


def openai(tmp: Path, base_url: str, key: str = KEY, **overrides: Any) -> OpenAIEngine:
    engine = OpenAIEngine.from_settings(engine_settings(
        tmp, openai_api_key=key, openai_base_url=base_url, **overrides))
    assert engine is not None
    return engine


# ------------------------------------------------------------------ configuration

def test_engines_are_off_until_a_key_is_set(tmp_path: Path) -> None:
    plain = build_engines(engine_settings(tmp_path))
    assert "runway" not in plain and "openai" not in plain
    ways = " ".join(how_to_enable("text_to_video"))
    assert "REELFORGE_RUNWAY_API_KEY" in ways and "REELFORGE_OPENAI_API_KEY" in ways

    both = build_engines(engine_settings(tmp_path, runway_api_key="r", openai_api_key="o",
                                         openai_modes=["image_to_video", "reel"]))
    assert both["runway"].capabilities().modes == ("text_to_video",)
    assert both["openai"].capabilities().modes == ("image_to_video",)  # reel: not offered
    assert list(both)[:2] == ["runway", "openai"] and list(both)[-1] == "local"


def test_shapes_and_lengths_asked_for() -> None:
    t2v, i2v = "text_to_video", "image_to_video"
    assert runway_ratio("gen4.5", t2v, {"aspect_ratio": "16:9"}) == "1280:720"
    assert runway_ratio("gen4.5", t2v, {"aspect_ratio": "1:1"}) == "1280:720"  # cropped
    assert runway_ratio("gen4.5", i2v, {"aspect_ratio": "4:5"}) == "832:1104"
    assert runway_ratio("veo3.1", i2v, {"aspect_ratio": "4:5"}) == "720:1280"
    assert runway_ratio("veo3.1", t2v, {"aspect_ratio": "9:16", "quality": "1080p"}) \
        == "1080:1920"
    assert [runway_seconds("veo3.1", s) for s in (4, 5, 8)] == [4, 6, 8]
    assert runway_seconds("gen4.5", 10) == 10
    assert openai_size({"aspect_ratio": "3:4", "quality": "720p"}) == "720x1280"
    assert openai_size({"aspect_ratio": "16:9", "quality": "1080p"}) == "1792x1024"
    assert [openai_seconds(s) for s in (4, 5, 8, 10, 20)] == [4, 8, 8, 12, 12]


def test_what_the_model_cannot_do_is_refused_at_submit(tmp_path: Path) -> None:
    """No request the provider would refuse, and no 720p upscaled and called 1080p."""
    def quote(engine: HostedEngine, mode: str, **raw: Any) -> float:
        return engine.output_seconds(mode, normalize_options(mode, raw))

    gen = runway(tmp_path, "http://127.0.0.1:9", runway_modes=["text_to_video",
                                                               "image_to_video"])
    with pytest.raises(Invalid, match="prompt"):
        quote(gen, "text_to_video")
    with pytest.raises(Invalid, match="1000"):
        quote(gen, "text_to_video", prompt="x" * 1001)
    assert quote(gen, "image_to_video", duration=10) == 10  # a prompt is optional here
    with pytest.raises(Invalid) as exc:
        quote(gen, "text_to_video", prompt="a cat", quality="1080p")
    assert "REELFORGE_RUNWAY_MODEL" in exc.value.fix
    veo = runway(tmp_path, "http://127.0.0.1:9", runway_model="veo3.1")
    assert quote(veo, "text_to_video", prompt="a cat", quality="1080p") == 5
    with pytest.raises(Invalid, match="8 s"):
        quote(veo, "text_to_video", prompt="a cat", duration=10)

    sora = openai(tmp_path, "http://127.0.0.1:9", openai_modes=["image_to_video"])
    with pytest.raises(Invalid, match="prompt"):
        quote(sora, "image_to_video")
    with pytest.raises(Invalid) as exc:
        quote(sora, "image_to_video", prompt="pan", quality="1080p")
    assert "REELFORGE_OPENAI_VIDEO_MODEL" in exc.value.fix
    pro = openai(tmp_path, "http://127.0.0.1:9", openai_video_model="sora-2-pro")
    assert quote(pro, "text_to_video", prompt="a cat", quality="1080p") == 5


# ------------------------------------------------------------------ (a) our own dialects

@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A reelforge server with no provider configured; its dialects play the vendors."""
    tmp = tmp_path_factory.mktemp("live")
    server = LiveServer(make_settings(tmp, f"sqlite:///{tmp / 'reelforge.db'}",
                                      render_scale=0.25))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_jpeg(tmp_path_factory.mktemp("photo") / "photo.jpg", (640, 400))


def test_runway_image_to_video_through_our_runway_dialect(live, photo, tmp_path):
    _, key = live.account()
    engine = runway(tmp_path, live.url + "/runway", key, runway_modes=["image_to_video"])
    progress = Recorder()
    arts = run(engine, "image_to_video", {"prompt": "slow push in", "duration": 5,
                                          "seed": 3}, tmp_path / "out", {"image": photo},
               progress)
    check_video(arts, (320, 180), 5.0)
    meta = arts["video"].meta
    assert meta["provider"] == "runway" and meta["provider_size"] == "320x180"
    assert progress.stages[:1] == ["generating"] and "rendering" in progress.stages
    with live.runtime.db.session() as s:
        from reelforge.api.dialects.common import job_from_uuid
        from reelforge.db.models import Job

        job = s.get(Job, job_from_uuid(meta["provider_task"]))
        assert job.meta["model"] == "gen4.5" and job.options["seed"] == 3
        assert (job.options["aspect_ratio"], job.options["duration"]) == ("16:9", 5)


def test_openai_image_to_video_through_our_openai_dialect(live, photo, tmp_path):
    _, key = live.account()
    engine = openai(tmp_path, live.url + "/openai/v1", key, openai_modes=["image_to_video"])
    arts = run(engine, "image_to_video", {"prompt": "a slow pan", "duration": 5},
               tmp_path / "out", {"image": photo})
    check_video(arts, (320, 180), 5.0)  # asked for "8" (it renders 10 s), trimmed to 5
    assert arts["video"].meta["provider_seconds"] == pytest.approx(10, abs=0.1)


@pytest.mark.parametrize("make, base", [(runway, "/runway"), (openai, "/openai/v1")])
def test_text_to_video_refused_by_our_dialects_quotes_their_message(live, tmp_path, make,
                                                                    base):
    _, key = live.account()
    engine = make(tmp_path, live.url + base, key)
    with pytest.raises(EngineError) as exc:
        run(engine, "text_to_video", {"prompt": "a red fox in snow"}, tmp_path / "out")
    err = exc.value
    assert err.code == "provider_refused" and not err.retryable
    assert "refused the request (HTTP 400)" in err.message
    assert "No configured engine can do text_to_video" in err.message
    assert "REELFORGE_RUNWAY_API_KEY" in err.message  # the dialect's own fix, quoted


def test_no_provider_runway_dialect_refuses_text_to_video_naming_the_settings(live):
    _, key = live.account()
    with live.client(key) as c:
        r = c.post("/runway/v1/text_to_video", headers={"X-Runway-Version": "2024-11-06"},
                   json={"model": "gen4.5", "promptText": "a cat", "ratio": "1280:720",
                         "duration": 5})
    assert r.status_code == 400
    body = r.json()
    assert set(body) == {"error", "fix"} and "text_to_video" in body["error"]
    assert "REELFORGE_RUNWAY_API_KEY" in body["fix"]
    assert "REELFORGE_OPENAI_API_KEY" in body["fix"]


# ------------------------------------------------------------------ (b) a fake provider

def test_runway_text_to_video_lifecycle(fake, tmp_path):
    fake.throttle = 1  # the first create is answered 429, Retry-After: 1
    engine = runway(tmp_path, fake.url)
    progress = Recorder()
    arts = run(engine, "text_to_video", {"prompt": "a red fox in snow", "duration": 5,
                                         "aspect_ratio": "9:16", "seed": 11},
               tmp_path / "out", progress=progress)
    check_video(arts, (180, 320), 5.0)

    creates = fake.seen("POST", "/v1/text_to_video")
    assert len(creates) == 2  # waited out the 429, then created once
    sent = creates[-1]
    assert sent["headers"]["x-runway-version"] == "2024-11-06"
    assert sent["headers"]["authorization"] == f"Bearer {KEY}"
    assert json.loads(sent["body"]) == {"model": "gen4.5", "promptText": "a red fox in snow",
                                        "ratio": "720:1280", "duration": 5, "seed": 11}
    task_id = arts["video"].meta["provider_task"]
    assert len(fake.seen("GET", f"/v1/tasks/{task_id}")) == 3  # PENDING, RUNNING, done
    assert ("generating", 0.5) in progress.calls
    assert not fake.seen("DELETE")
    assert arts["video"].meta["provider_seconds"] == pytest.approx(5, abs=0.1)


def test_openai_text_to_video_lifecycle(fake, tmp_path):
    engine = openai(tmp_path, fake.url + "/v1")
    progress = Recorder()
    arts = run(engine, "text_to_video", {"prompt": "waves at dusk", "duration": 5},
               tmp_path / "out", progress=progress)
    check_video(arts, (320, 180), 5.0)

    create = fake.seen("POST", "/v1/videos")[0]
    assert create["headers"]["content-type"].startswith("multipart/form-data")
    assert create["fields"] == {"model": "sora-2", "prompt": "waves at dusk",
                                "seconds": "8", "size": "1280x720"}
    video_id = arts["video"].meta["provider_task"]
    content = fake.seen("GET", f"/v1/videos/{video_id}/content")
    assert len(content) == 1 and content[0]["query"] == "variant=video"
    assert content[0]["headers"]["authorization"] == f"Bearer {KEY}"
    assert ("generating", 0.4) in progress.calls
    # Sora's 8 s clip, with its audio, trimmed to the 5 s asked for
    with av.open(str(arts["video"].path)) as container:
        assert container.streams.audio and container.streams.audio[0].codec_context.name == "aac"


def test_openai_image_to_video_sends_the_reference_at_the_size(fake, photo, tmp_path):
    engine = openai(tmp_path, fake.url + "/v1", openai_modes=["image_to_video"])
    run(engine, "image_to_video", {"prompt": "the figure walks", "aspect_ratio": "9:16"},
        tmp_path / "out", {"image": photo})
    fields = fake.seen("POST", "/v1/videos")[0]["fields"]
    filename, content_type, data = fields["input_reference"]
    assert (filename, content_type, fields["size"]) == ("reference.jpg", "image/jpeg",
                                                        "720x1280")
    from io import BytesIO

    from PIL import Image

    with Image.open(BytesIO(data)) as im:
        assert im.size == (720, 1280)  # OpenAI wants the reference at the video's size


def test_a_short_clip_is_held_to_the_length_asked_for(fake, tmp_path):
    fake.clip_seconds = 3  # the provider makes less than it was asked for
    engine = runway(tmp_path, fake.url)
    arts = run(engine, "text_to_video", {"prompt": "a lighthouse", "duration": 5,
                                         "fps": 30, "watermark": "demo"}, tmp_path / "out")
    check_video(arts, (320, 180), 5.0, fps=30)
    with av.open(str(arts["video"].path)) as container:
        frames = [f.to_ndarray(format="gray").astype(int)
                  for f in container.decode(video=0)]
    assert abs(frames[100] - frames[149]).mean() < 1.5  # after 3 s: the last frame, held
    assert abs(frames[10] - frames[40]).mean() > 5  # before: the provider's moving clip


# ------------------------------------------------------------------ (c) failures

@pytest.mark.parametrize("make, base, failure", [
    (runway, "", ("Prompt was flagged by moderation", "SAFETY.INPUT.TEXT")),
    (openai, "/v1", ("Your request was blocked by our moderation system.",
                     "moderation_blocked"))])
def test_a_failed_task_is_a_clear_error(fake, tmp_path, make, base, failure):
    fake.fail = failure
    with pytest.raises(EngineError) as exc:
        run(make(tmp_path, fake.url + base), "text_to_video", {"prompt": "something"},
            tmp_path / "out")
    err = exc.value
    assert failure[0] in err.message and failure[1] in err.message
    assert err.code == "provider_failed" and not err.retryable and "moderation" in err.fix
    assert not fake.seen("DELETE")  # a finished task is not cancelled


@pytest.mark.parametrize("make, base, env", [(runway, "", "REELFORGE_RUNWAY_API_KEY"),
                                             (openai, "/v1", "REELFORGE_OPENAI_API_KEY")])
def test_a_refused_key_names_the_setting(fake, tmp_path, make, base, env):
    with pytest.raises(EngineError) as exc:
        run(make(tmp_path, fake.url + base, key="wrong"), "text_to_video",
            {"prompt": "something"}, tmp_path / "out")
    err = exc.value
    assert "refused the API key (HTTP 401)" in err.message
    assert "Incorrect API key provided." in err.message
    assert env in err.fix and err.code == "provider_auth" and not err.retryable


@pytest.mark.parametrize("make, base, prefix", [(runway, "", "/v1/tasks/"),
                                                (openai, "/v1", "/v1/videos/")])
def test_cancel_while_polling_cancels_the_remote_task(fake, tmp_path, make, base, prefix):
    with pytest.raises(JobCancelled):
        run(make(tmp_path, fake.url + base), "text_to_video", {"prompt": "something"},
            tmp_path / "out", progress=Recorder(stop_at=2))
    [task] = fake.tasks.values()
    assert task["cancelled"]
    assert [r["path"] for r in fake.seen("DELETE")] == [prefix + task["id"]]


def test_an_output_on_another_host_passes_the_address_guard(fake, tmp_path):
    fake.output_host = "localhost"  # not the provider's origin: a URL we were handed
    with pytest.raises(EngineError) as exc:
        run(runway(tmp_path, fake.url), "text_to_video", {"prompt": "x"}, tmp_path / "a")
    assert exc.value.code == "provider_output" and "loopback" in exc.value.message
    assert "REELFORGE_TRUSTED_NETWORKS" in exc.value.fix

    trusting = runway(tmp_path, fake.url, trusted_networks=["127.0.0.0/8", "::1/128"])
    arts = run(trusting, "text_to_video", {"prompt": "x"}, tmp_path / "b")
    check_video(arts, (320, 180), 5.0)


# ------------------------------------------------------------------ (d) end to end

def test_text_to_video_end_to_end_through_the_native_api(fake, tmp_path):
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'reelforge.db'}",
                             render_scale=0.25, runway_api_key=KEY,
                             runway_base_url=fake.url, provider_poll_s=0.05)
    server = LiveServer(settings)
    try:
        _, key = server.account()
        with server.client(key) as c:
            engines = {e["name"]: e for e in c.get("/v1/engines").json()["data"]}
            assert engines["runway"]["modes"] == ["text_to_video"]
            r = c.post("/v1/jobs", json={"mode": "text_to_video", "prompt": "a red fox",
                                         "duration": 5})
            assert r.status_code == 201, r.text
            done = wait_for(c, r.json()["id"], timeout=60)
            assert done["status"] == "succeeded", done
            video = c.get(f"/v1/jobs/{done['id']}/artifacts/video")
            assert video.status_code == 200
        with server.runtime.db.session() as s:
            from reelforge.db.models import Job

            assert s.get(Job, done["id"]).engine == "runway"
    finally:
        server.stop()
    out = tmp_path / "out.mp4"
    out.write_bytes(video.content)
    with av.open(str(out)) as container:
        cc = container.streams.video[0].codec_context
        assert (cc.name, cc.width, cc.height) == ("h264", 320, 180)
        assert sum(1 for _ in container.decode(video=0)) == 120
    assert len(fake.seen("POST", "/v1/text_to_video")) == 1
