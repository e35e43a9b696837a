"""A worker process killed mid-render: the job completes on retry, once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import redis
from sqlalchemy import select

from reelforge.db.models import Job, LedgerEntry, WebhookEvent

from ..api.test_webhooks import Receiver
from ..conftest import TEST_PLANS, LiveServer, make_jpeg, make_settings

REDIS_URL = "redis://127.0.0.1:6379/15"


def _redis_or_skip() -> None:
    try:
        redis.Redis.from_url(REDIS_URL).flushdb()
    except redis.RedisError:
        if os.environ.get("CI"):
            pytest.fail("Redis is not reachable on 127.0.0.1:6379 (CI must have it)")
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")


def _start_worker(settings, log_path) -> subprocess.Popen:
    env = {**os.environ,
           "REELFORGE_DATA_DIR": str(settings.data_dir),
           "REELFORGE_DATABASE_URL": settings.database_url,
           "REELFORGE_BROKER_URL": REDIS_URL,
           "REELFORGE_SECRET_KEY": settings.secret_key,
           "REELFORGE_LEASE_SECONDS": "3",
           "REELFORGE_SWEEP_INTERVAL_S": "0.5",
           "REELFORGE_WEBHOOK_POLL_S": "0.2",
           "REELFORGE_ALLOW_HTTP_WEBHOOKS": "true",
           "REELFORGE_TRUSTED_NETWORKS": '["127.0.0.1/32"]',
           "REELFORGE_PUBLIC_BASE_URL": settings.public_base_url,
           "REELFORGE_PLANS": json.dumps({k: v.model_dump() for k, v in TEST_PLANS.items()})}
    return subprocess.Popen([sys.executable, "-m", "reelforge.cli", "worker", "-c", "1"],
                            env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _job(live, job_id) -> Job:
    with live.runtime.db.session() as s:
        return s.get(Job, job_id)


def test_killed_worker_job_completes_on_retry_once(tmp_path, db_url):
    _redis_or_skip()
    settings = make_settings(tmp_path, db_url, broker_url=REDIS_URL, lease_seconds=3.0,
                             allow_http_webhooks=True, trusted_networks=["127.0.0.1/32"])
    live = LiveServer(settings, start_workers=False)
    receiver = Receiver(fail_first=0)
    first = _start_worker(settings, tmp_path / "w1.log")
    second = None
    try:
        _, key = live.account("killme")
        image = make_jpeg(tmp_path / "p.jpg")
        with live.client(key) as c:
            job = c.post("/v1/jobs", data={"mode": "image_to_video", "duration": "10",
                                           "quality": "720p", "webhook_url": receiver.url},
                         files={"image": ("p.jpg", image.read_bytes())}).json()
        deadline = time.time() + 60
        while not (_job(live, job["id"]).stage == "rendering"
                   and _job(live, job["id"]).progress > 15):
            assert time.time() < deadline, (tmp_path / "w1.log").read_text()
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        assert _job(live, job["id"]).status == "running"
        second = _start_worker(settings, tmp_path / "w2.log")
        deadline = time.time() + 120
        while _job(live, job["id"]).status not in ("succeeded", "failed"):
            assert time.time() < deadline, (tmp_path / "w2.log").read_text()
            time.sleep(0.2)
        final = _job(live, job["id"])
        assert final.status == "succeeded", final.error
        assert final.attempt == 2
        while time.time() < deadline and not receiver.calls:
            time.sleep(0.1)
        with live.runtime.db.session() as s:
            kinds = sorted(s.scalars(select(LedgerEntry.kind).where(
                LedgerEntry.job_id == job["id"])))
            events = s.scalars(select(WebhookEvent).where(
                WebhookEvent.job_id == job["id"])).all()
        assert kinds == ["capture", "reserve"]
        assert len(events) == 1 and events[0].event_type == "job.succeeded"
        assert len(receiver.calls) == 1
        keys = live.runtime.storage.list_keys(f"jobs/{job['id']}")
        assert keys and all("/a2/" in k for k in keys)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        receiver.close()
        live.stop()
