"""clips through the real server and worker (live once the local engine lists the
clips mode): a job that fails on bad input says why and releases its credits."""

from __future__ import annotations

import pytest

from reelforge.config import Settings
from reelforge.engines.local.engine import LocalEngine

from ..conftest import wait_for

pytestmark = pytest.mark.skipif(
    "clips" not in LocalEngine(Settings()).capabilities().modes,
    reason="the local engine does not list the clips mode yet (engine wiring)")


@pytest.fixture
def clips_server(server):
    return server


def test_bad_videos_fail_clearly_and_release_credits(clips_server, talk, tmp_path) -> None:
    _, key = clips_server.account("clips-bad")
    with clips_server.client(key) as c:
        before = c.get("/v1/account").json()["balance"]
        # refused at upload: not a video (nothing is charged)
        r = c.post("/v1/jobs", data={"mode": "clips"},
                   files={"video": ("a.mp4", b"<!doctype html><html></html>", "video/mp4")})
        assert r.status_code in (400, 415, 422), r.text
        assert r.json()["error"]["fix"]
        # accepted, then fails in the worker: trimStart past the end of the video
        r = c.post("/v1/jobs", data={"mode": "clips", "trimStart": "500", "numClips": "1"},
                   files={"video": ("talk.mp4", talk.path.read_bytes(), "video/mp4")})
        assert r.status_code == 201, r.text
        done = wait_for(c, r.json()["id"], timeout=120)
        assert done["status"] == "failed"
        assert "trimStart" in done["error"]["message"] and done["error"]["fix"]
        account = c.get("/v1/account").json()
        assert account["held"] == 0 and account["balance"] == before


def test_clips_job_over_http(clips_server, talk) -> None:
    _, key = clips_server.account("clips-ok")
    with clips_server.client(key) as c:
        r = c.post("/v1/jobs", data={"mode": "clips", "numClips": "1", "clipLength": "short",
                                     "captionPreset": "karaoke", "aspectRatio": "9:16",
                                     "transcript": talk.transcript},
                   files={"video": ("talk.mp4", talk.path.read_bytes(), "video/mp4")})
        assert r.status_code == 201, r.text
        done = wait_for(c, r.json()["id"], timeout=180)
        assert done["status"] == "succeeded", done
        outputs = done["outputs"]
        assert {"video", "poster", "clip_01", "clip_01_poster", "clip_01_ass",
                "manifest"} <= set(outputs)
        assert outputs["clip_01"]["filename"] == "clip_01.mp4"
        assert outputs["clip_01_poster"]["clipora_name"] == "clip_01.jpg"
        manifest = c.get(f"/v1/jobs/{done['id']}/artifacts/manifest").json()
        assert manifest["clipCount"] == 1
        assert manifest["clips"][0]["downloadUrl"] == "clip_01.mp4"
