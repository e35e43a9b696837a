"""Several processes, one service: rate limits, progress streams and queue tiers work
across API and worker processes (PostgreSQL + Redis + local storage)."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from reelforge.queue.progress import RedisProgressBus

from ..conftest import make_jpeg
from .cluster import Cluster, make_account

pytestmark = pytest.mark.timeout(180)
FAST = {"REELFORGE_RENDER_SCALE": "0.125"}


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _submit(api, key, image: bytes, **fields) -> dict:
    r = httpx.post(api.url + "/v1/jobs", headers=_auth(key), timeout=30,
                   data={"mode": "image_to_video", "duration": "5", **fields},
                   files={"image": ("p.jpg", image)})
    assert r.status_code == 201, r.text
    return r.json()


def _wait(api, key, job_id, timeout=90) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = httpx.get(f"{api.url}/v1/jobs/{job_id}", headers=_auth(key), timeout=10).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_rate_limits_are_shared_by_api_processes(tmp_path, pg_url, redis_url):
    cluster = Cluster(tmp_path, database_url=pg_url, broker_url=redis_url)
    try:
        api1 = cluster.start_api()
        api2 = cluster.start_api()
        _, key = make_account(cluster.settings(), "tight", "tight", 100)
        answers = [httpx.get((api1, api2)[i % 2].url + "/v1/account", headers=_auth(key),
                             timeout=10) for i in range(12)]
        assert [r.status_code for r in answers] == [200] * 10 + [429] * 2
        assert [int(r.headers["X-RateLimit-Remaining"]) for r in answers[:10]] == list(
            range(9, -1, -1))
        assert int(answers[-1].headers["Retry-After"]) >= 1
    finally:
        cluster.stop()


def test_progress_streams_from_any_api_process(tmp_path, pg_url, redis_url):
    cluster = Cluster(tmp_path, database_url=pg_url, broker_url=redis_url)
    try:
        api1 = cluster.start_api()
        api2 = cluster.start_api()
        cluster.start_worker(1)
        _, key = make_account(cluster.settings(), "watcher", "bulk", 1000)
        job = _submit(api1, key, make_jpeg(tmp_path / "p.jpg").read_bytes(), duration="10")
        events = []
        with httpx.stream("GET", f"{api2.url}/v1/jobs/{job['id']}/events", headers=_auth(key),
                          timeout=120) as stream:
            kind = None
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    events.append((kind, json.loads(line[6:]), time.monotonic()))
                    if kind == "end":
                        break
        assert events[-1][0] == "end" and events[-1][1]["status"] == "succeeded"
        rendering = [e for k, e, _ in events if e["stage"] == "rendering"]
        assert len(rendering) >= 3, [(k, e["stage"], e["progress"]) for k, e, _ in events]
        progress = [e["progress"] for _, e, _ in events]
        assert progress == sorted(progress)
    finally:
        cluster.stop()


def test_websocket_progress_from_any_api_process(tmp_path, pg_url, redis_url):
    """Clipora's /ws?jobId= on one API process follows a job submitted on another."""
    import subprocess

    from websockets.sync.client import connect

    from reelforge.media.ffmpeg import find_ffmpeg

    video = tmp_path / "talk.mp4"
    subprocess.run([find_ffmpeg(""), "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=320x240:rate=24:duration=4", "-f", "lavfi", "-i",
                    "sine=frequency=300:sample_rate=22050:duration=4", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(video)], check=True)
    cluster = Cluster(tmp_path, database_url=pg_url, broker_url=redis_url, env=FAST)
    try:
        api1 = cluster.start_api()
        api2 = cluster.start_api()
        cluster.start_worker(1)
        _, key = make_account(cluster.settings(), "wswatcher", "bulk", 1000)
        r = httpx.post(f"{api1.url}/clipora/api/upload", headers={"X-API-Key": key}, timeout=60,
                       data={"options": json.dumps({"mode": "none"})},
                       files={"video": ("talk.mp4", video.read_bytes(), "video/mp4")})
        assert r.status_code == 200, r.text
        ws_url = api2.url.replace("http://", "ws://") + r.json()["wsUrl"]
        messages = []
        with connect(ws_url, additional_headers={"X-API-Key": key}, open_timeout=30) as ws:
            while True:
                message = json.loads(ws.recv(timeout=120))
                messages.append(message)
                if message["type"] in ("completed", "failed", "error"):
                    break
        assert messages[-1]["type"] == "completed", messages
        progress = [m["progress"] for m in messages]
        assert progress == sorted(progress) and len(messages) >= 2
    finally:
        cluster.stop()


def test_progress_notices_cross_redis(redis_url):
    async def scenario() -> tuple[bool, bool, float]:
        listener, worker = RedisProgressBus(redis_url), RedisProgressBus(redis_url)
        try:
            with listener.subscribe("job_a") as notices:
                # the listening thread subscribes, then wakes every watcher once
                assert await notices.wait(5)
                worker.publish("job_other")
                other = await notices.wait(0.5)
                started = time.monotonic()
                worker.publish("job_a")
                mine = await notices.wait(5)
                return other, mine, time.monotonic() - started
        finally:
            listener.close()
            worker.close()

    other, mine, latency = asyncio.run(scenario())
    assert not other and mine and latency < 0.5


def test_a_dedicated_worker_pool_takes_only_its_tier(tmp_path, pg_url, redis_url):
    cluster = Cluster(tmp_path, database_url=pg_url, broker_url=redis_url, env=FAST)
    try:
        api = cluster.start_api()
        cluster.start_worker(1, env={"REELFORGE_WORKER_TIERS": '["dedicated"]'})
        settings = cluster.settings()
        _, standard_key = make_account(settings, "std", "bulk", 1000)
        _, dedicated_key = make_account(settings, "ded", "bulk_dedicated", 1000)
        image = make_jpeg(tmp_path / "p.jpg", (480, 320)).read_bytes()
        standard = _submit(api, standard_key, image)
        dedicated = _submit(api, dedicated_key, image)
        assert _wait(api, dedicated_key, dedicated["id"])["status"] == "succeeded"
        time.sleep(2)
        job = httpx.get(f"{api.url}/v1/jobs/{standard['id']}", headers=_auth(standard_key)).json()
        assert job["status"] == "queued" and job["queue_position"] == 0
        cluster.start_worker(1)  # a general worker serves every tier
        assert _wait(api, standard_key, standard["id"])["status"] == "succeeded"
    finally:
        cluster.stop()


def test_a_database_outage_is_a_503_with_a_fix_then_recovers(tmp_path, pg_url, redis_url):
    """Our database alone refuses connections (the rest of PostgreSQL stays up)."""
    import psycopg

    from .cluster import _admin_dsn

    cluster = Cluster(tmp_path, database_url=pg_url, broker_url=redis_url)
    name = pg_url.rsplit("/", 1)[1]

    def outage(on: bool) -> None:
        with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if on else "true"}')
            if on:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = %s", (name,))

    try:
        api = cluster.start_api()
        _, key = make_account(cluster.settings(), "outage", "bulk", 100)
        assert httpx.get(api.url + "/v1/account", headers=_auth(key)).status_code == 200
        outage(True)
        try:
            answers = [httpx.get(api.url + path, headers=_auth(key), timeout=10)
                       for path in ("/v1/account", "/v1/jobs", "/readyz", "/v1/account")]
        finally:
            outage(False)
        assert [r.status_code for r in answers] == [503] * 4
        for r in answers[:2]:
            assert r.json()["error"]["code"] == "unavailable" and r.json()["error"]["fix"]
        assert answers[2].json()["checks"]["database"].startswith("error")
        assert httpx.get(api.url + "/v1/account", headers=_auth(key)).status_code == 200
        assert "-> 500" not in cluster.procs[0].text()
    finally:
        cluster.stop()
