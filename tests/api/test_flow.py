"""The whole flow over HTTP with real ffmpeg: upload, submit, progress, finish, download."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import av
import httpx

from ..conftest import make_jpeg, wait_for


def test_image_to_video_end_to_end(server, tmp_path):
    _, key = server.account("flow")
    image = make_jpeg(tmp_path / "photo.jpg", (1200, 800))
    with server.client(key) as c:
        r = c.post("/v1/jobs", data={"mode": "image_to_video", "style": "cinematic",
                                     "duration": "5", "quality": "720p",
                                     "prompt": "slow zoom in", "seed": "7"},
                   files={"image": ("photo.jpg", image.read_bytes(), "image/jpeg")})
        assert r.status_code == 201, r.text
        job = r.json()
        # live progress over SSE until the end event
        events = []
        with c.stream("GET", f"/v1/jobs/{job['id']}/events") as stream:
            kind = None
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    events.append((kind, json.loads(line[6:])))
                    if kind == "end":
                        break
        done = wait_for(c, job["id"])
        assert done["status"] == "succeeded", done
        assert events[-1][1]["status"] == "succeeded"
        progresses = [e["progress"] for _, e in events]
        assert progresses == sorted(progresses) and len(set(progresses)) >= 3
        assert {"video", "poster"} <= set(done["outputs"])
        video = done["outputs"]["video"]
        assert video["content_type"] == "video/mp4" and video["bytes"] > 10_000

        # download through the API, with a Range request
        full = c.get(f"/v1/jobs/{job['id']}/artifacts/video")
        assert full.status_code == 200 and len(full.content) == video["bytes"]
        part = c.get(f"/v1/jobs/{job['id']}/artifacts/video", headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == full.content[:100]
        assert part.headers["Content-Range"] == f"bytes 0-99/{video['bytes']}"
        # the signed URL works without a key; a tampered one does not
        assert httpx.get(video["url"]).content == full.content
        assert httpx.get(video["url"].replace("sig=", "sig=0")).status_code == 403
        account = c.get("/v1/account").json()
        assert account["held"] == 0 and account["balance"] == 1000 - done["cost"]

    out = tmp_path / "out.mp4"
    out.write_bytes(full.content)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
        assert stream.codec_context.pix_fmt == "yuv420p"
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 5 * 24

    # the CLI reads the same server: status, wait and download
    env_key = {"REELFORGE_URL": server.url, "REELFORGE_API_KEY": key}
    cli = [sys.executable, "-m", "reelforge.cli"]
    import os
    env = {**os.environ, **env_key}
    res = subprocess.run(cli + ["wait", job["id"]], capture_output=True, text=True, env=env,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    res = subprocess.run(cli + ["download", job["id"], "-o", str(tmp_path / "cli.mp4")],
                         capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "cli.mp4").read_bytes() == full.content

    with server.client(key) as c:
        deleted = c.delete(f"/v1/jobs/{job['id']}").json()
        assert deleted["files_removed"] >= 2
        assert c.get(f"/v1/jobs/{job['id']}/artifacts/video").status_code == 410
    assert server.runtime.storage.list_keys(f"jobs/{job['id']}") == []


def test_event_stream_keeps_an_idle_connection_alive(settings, tmp_path, monkeypatch):
    """A job waiting in the queue changes nothing for a while; the stream still sends
    an SSE comment every KEEPALIVE_S, so proxies don't close it as idle."""
    from reelforge.api import events

    from ..conftest import LiveServer

    monkeypatch.setattr(events, "KEEPALIVE_S", 0.3)
    live = LiveServer(settings, start_workers=False)  # nothing takes the job
    try:
        _, key = live.account("idle")
        image = make_jpeg(tmp_path / "photo.jpg", (640, 360))
        with live.client(key) as c:
            r = c.post("/v1/jobs", data={"mode": "image_to_video"},
                       files={"image": ("photo.jpg", image.read_bytes(), "image/jpeg")})
            assert r.status_code == 201, r.text
            lines, started = [], time.monotonic()
            with c.stream("GET", f"/v1/jobs/{r.json()['id']}/events") as stream:
                for line in stream.iter_lines():
                    lines.append(line)
                    if lines.count(": keep-alive") == 2:
                        break
            took = time.monotonic() - started
    finally:
        live.stop()
    first = json.loads(next(x for x in lines if x.startswith("data: "))[6:])
    assert first["status"] == "queued"  # the view first, then comments while it waits
    assert lines.index(": keep-alive") > lines.index("event: progress")
    assert 0.5 < took < 10
