"""A job past its time limit, or cancelled while rendering, stops its ffmpeg at once."""

from __future__ import annotations

import os
import time
from pathlib import Path

from reelforge.core import jobs
from reelforge.db.models import Job

from ..conftest import LiveServer, make_jpeg, make_settings, wait_for


def ffmpeg_children() -> list[int]:
    """ffmpeg processes whose parent is this test process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1: stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == os.getpid() and "ffmpeg" in name:
            found.append(int(entry.name))
    return found


def _submit(live, key, tmp_path) -> str:
    with live.client(key) as c:
        r = c.post("/v1/jobs", data={"mode": "image_to_video", "duration": "10"},
                   files={"image": ("p.jpg", make_jpeg(tmp_path / "p.jpg").read_bytes())})
        assert r.status_code == 201, r.text
        return r.json()["id"]


def test_timeout_fails_the_job_and_kills_ffmpeg(tmp_path, db_url):
    live = LiveServer(make_settings(tmp_path, db_url, job_timeout_s=1.5))
    try:
        _, key = live.account("slow")
        job_id = _submit(live, key, tmp_path)
        with live.client(key) as c:
            done = wait_for(c, job_id, timeout=60)
            account = c.get("/v1/account").json()
        assert done["status"] == "failed" and done["error"]["code"] == "timed_out"
        assert done["error"]["fix"]
        assert account["held"] == 0 and account["balance"] == 1000
        time.sleep(0.2)
        assert ffmpeg_children() == []
    finally:
        live.stop()


def test_cancel_while_rendering_stops_within_a_second(tmp_path, db_url):
    live = LiveServer(make_settings(tmp_path, db_url))
    try:
        _, key = live.account("cancel")
        job_id = _submit(live, key, tmp_path)
        deadline = time.time() + 60
        while True:
            with live.runtime.db.session() as s:
                job = s.get(Job, job_id)
            if job.stage == "rendering" and ffmpeg_children():
                break
            assert time.time() < deadline and job.status in ("queued", "running")
            time.sleep(0.02)
        with live.runtime.db.session() as s:
            jobs.cancel(s, live.settings, s.get(Job, job_id), allow_running=True)
        started = time.monotonic()
        while ffmpeg_children():
            assert time.monotonic() - started < 1.0, "ffmpeg still running 1 s after cancel"
            time.sleep(0.02)
        with live.client(key) as c:
            assert c.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"
    finally:
        live.stop()
