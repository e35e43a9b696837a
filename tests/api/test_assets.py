"""Uploads and URL inputs over HTTP: checked by content, refused cleanly, nothing left."""

from __future__ import annotations

import io
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from reelforge.db.models import Asset

from ..conftest import LiveServer, make_jpeg, make_settings


@pytest.fixture
def api(settings):
    live = LiveServer(settings, start_workers=False)
    yield live
    live.stop()


def _png_header(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)) + iend)


def _nothing_left(api) -> None:
    with api.runtime.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Asset)) == 0
    assert api.runtime.storage.list_keys("assets") == []
    tmp = api.settings.data_dir / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []


def test_malformed_uploads_get_clear_4xx_and_leave_nothing(api, tmp_path):
    _, key = api.account("malformed")
    good = make_jpeg(tmp_path / "g.jpg").read_bytes()
    cases = {
        "truncated jpeg": ("photo.jpg", good[: len(good) // 2], 422),
        "m3u8 renamed": ("clip.mp4", b"#EXTM3U\n#EXTINF:10,\nhttp://169.254.169.254/x.ts\n", 415),
        "png bomb": ("huge.png", _png_header(100000, 100000), 413),
        "text file": ("notes.jpg", b"hello, this is not an image\n" * 10, 415),
    }
    with api.client(key) as c:
        for name, (filename, data, status) in cases.items():
            r = c.post("/v1/assets", files={"file": (filename, data)})
            assert r.status_code == status, (name, r.text)
            err = r.json()["error"]
            assert err["message"] and err["fix"], name
            r = c.post("/v1/jobs", data={"mode": "image_to_video"},
                       files={"image": (filename, data)})
            assert r.status_code == status, (name, r.text)
    _nothing_left(api)
    with api.client(key) as c:
        assert c.get("/v1/jobs").json()["data"] == []


def test_dash_filename_is_harmless(api, tmp_path):
    _, key = api.account("dash")
    data = make_jpeg(tmp_path / "g.jpg").read_bytes()
    with api.client(key) as c:
        r = c.post("/v1/assets", files={"file": ("-i evil.jpg", data)})
        assert r.status_code == 201, r.text
        asset = r.json()
        assert asset["kind"] == "image" and asset["meta"]["width"] == 960
        r = c.post("/v1/assets", files={"file": ("-f concat", b"ffconcat version 1.0\nfile /etc/passwd\n")})
        assert r.status_code == 415
    keys = api.runtime.storage.list_keys("assets")
    assert len(keys) == 1 and "-" not in keys[0].split("/")[-1][:1]


def test_size_limit_is_413(tmp_path, db_url):
    settings = make_settings(tmp_path, db_url)
    settings.limits.max_upload_bytes = 50_000
    live = LiveServer(settings, start_workers=False)
    try:
        _, key = live.account("small")
        with live.client(key) as c:
            r = c.post("/v1/assets", files={"file": ("big.jpg", b"\xff\xd8\xff" + b"0" * 60_000)})
        assert r.status_code == 413 and "MB" in r.json()["error"]["message"]
        _nothing_left(live)
    finally:
        live.stop()


BAD_HOSTS = ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "0.0.0.0", "169.254.169.254",
             "2130706433", "localhost"]


def test_url_inputs_refuse_private_addresses(api):
    _, key = api.account("guard")
    with api.client(key) as c:
        for host in BAD_HOSTS:
            r = c.post("/v1/assets", json={"url": f"http://{host}/photo.jpg"})
            assert r.status_code == 400, (host, r.text)
            assert r.json()["error"]["code"] == "unsafe_url"
            r = c.post("/v1/jobs", json={"mode": "image_to_video",
                                         "image_url": f"http://{host}/photo.jpg"})
            assert r.status_code == 400, (host, r.text)
    _nothing_left(api)


def test_redirect_to_a_private_address_is_refused(tmp_path, db_url):
    image = make_jpeg(tmp_path / "ok.jpg").read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/ok.jpg":
                self.send_response(200)
                self.send_header("Content-Length", str(len(image)))
                self.end_headers()
                self.wfile.write(image)
                return
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_port}"
    live = LiveServer(make_settings(tmp_path, db_url, trusted_networks=["127.0.0.1/32"]),
                      start_workers=False)
    try:
        _, key = live.account("redirect")
        with live.client(key) as c:
            ok = c.post("/v1/assets", json={"url": f"{base}/ok.jpg"})
            assert ok.status_code == 201 and ok.json()["kind"] == "image"
            r = c.post("/v1/assets", json={"url": f"{base}/go"})
            assert r.status_code == 400 and r.json()["error"]["code"] == "unsafe_url"
    finally:
        live.stop()
        httpd.shutdown()
