"""Fixtures for the dialect tests: live servers on loopback (SQLite unless a test asks
for ``db_url``), a loopback media server for URL inputs, a webhook receiver, and
media generated with Pillow and ffmpeg's lavfi."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from reelforge.media.ffmpeg import find_ffmpeg

from ..conftest import LiveServer, make_jpeg, make_settings

FAST = dict(render_scale=0.25, trusted_networks=["127.0.0.1/32"], allow_http_webhooks=True)


def sqlite_settings(tmp: Path, **overrides: object):
    return make_settings(tmp, f"sqlite:///{tmp / 'reelforge.db'}", **{**FAST, **overrides})


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server with workers for a test module (SQLite, fast renders)."""
    server = LiveServer(sqlite_settings(tmp_path_factory.mktemp("live")))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server without workers for a test module: jobs stay queued."""
    server = LiveServer(sqlite_settings(tmp_path_factory.mktemp("idle")), start_workers=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated inputs: photo.jpg, clip.mp4 (2 s), voice.wav (2 s), big.bin (11 MB)."""
    root = tmp_path_factory.mktemp("media")
    make_jpeg(root / "photo.jpg", (640, 400))
    make_jpeg(root / "second.jpg", (480, 640))
    ffmpeg = find_ffmpeg("")
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=320x180:rate=24:duration=2", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(root / "clip.mp4")], check=True)
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=22050:duration=2", str(root / "voice.wav")],
                   check=True)
    (root / "big.bin").write_bytes(b"\0" * (11 * 1024 * 1024))
    return root


class MediaServer:
    """Serves ``media_dir`` over plain http on 127.0.0.1 (a trusted network in tests)."""

    def __init__(self, root: Path) -> None:
        outer = root

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                path = outer / self.path.lstrip("/").split("?")[0]
                if not path.is_file():
                    self.send_response(404)
                    self.end_headers()
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="session")
def media(media_dir: Path) -> Iterator[MediaServer]:
    server = MediaServer(media_dir)
    yield server
    server.httpd.shutdown()


class Receiver:
    """A webhook endpoint on loopback that records headers and raw bodies."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait(self, count: int = 1, timeout: float = 30) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.time() + timeout
        while len(self.calls) < count:
            assert time.time() < deadline, f"only {len(self.calls)} webhook call(s) arrived"
            time.sleep(0.05)
        return self.calls

    def json(self, index: int = 0) -> dict:
        return json.loads(self.calls[index][1])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.httpd.shutdown()


def poll(fetch: Callable[[], dict], done: Callable[[dict], bool], timeout: float = 90,
         every: float = 0.2) -> dict:
    deadline = time.time() + timeout
    while True:
        body = fetch()
        if done(body):
            return body
        assert time.time() < deadline, f"timed out; last answer {body}"
        time.sleep(every)


def key_client(server: LiveServer, key: str, header: str = "X-API-Key") -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={header: key}, timeout=60)


def webhook_secret(server: LiveServer, key: str) -> str:
    with server.client(key) as c:
        return c.get("/v1/account/webhook-secret").json()["secret"]
