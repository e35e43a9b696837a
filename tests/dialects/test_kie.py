"""KIE's Runway API (seed 004) over HTTP on loopback: the envelope, states, rules,
callbacks, extend, Aleph limits, 451 and expiry."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook

from reelforge.db.models import Job

from .conftest import poll, webhook_secret

GEN = "/kie/api/v1/runway/generate"
DETAIL = "/kie/api/v1/runway/record-detail"
ALEPH = "/kie/api/v1/aleph/generate"


def _client(server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"},
                        timeout=60)


def _error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == status and body["data"] is None and body["msg"], body
    return body["msg"]


def _task(r: httpx.Response) -> str:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == 200 and body["msg"] == "success"
    uuid.UUID(body["data"]["taskId"])
    return body["data"]["taskId"]


def test_generate_poll_callback_extend(live, media, receiver):
    _, key = live.account(plan="growth")
    with _client(live, key) as c:
        task = _task(c.post(GEN, json={
            "prompt": "The character starts walking forward with confidence",
            "imageUrl": f"{media.url}/photo.jpg", "duration": 5, "quality": "720p",
            "aspectRatio": "9:16", "waterMark": "reelforge", "callBackUrl": receiver.url}))
        states = set()

        def fetch() -> dict:
            body = c.get(DETAIL, params={"taskId": task}).json()
            assert body["code"] == 200
            states.add(body["data"]["state"])
            return body["data"]

        data = poll(fetch, lambda d: d["state"] in ("success", "fail"))
        assert data["state"] == "success", data
        assert states <= {"wait", "queueing", "generating", "success"}
        assert data["taskId"] == task and data["expireFlag"] == 0
        datetime.strptime(data["generateTime"], "%Y-%m-%d %H:%M:%S")
        info = data["videoInfo"]
        uuid.UUID(info["videoId"])
        assert httpx.get(info["videoUrl"]).content[4:8] == b"ftyp"
        assert httpx.get(info["imageUrl"]).content[:2] == b"\xff\xd8"
        assert data["generateParam"]["imageUrl"].endswith("/photo.jpg")
        # the Aleph poll does not know Gen-4 tasks
        _error(c.get("/kie/api/v1/aleph/record-detail", params={"taskId": task}), 404)

        headers, body = receiver.wait()[0]
        callback = Webhook(webhook_secret(live, key)).verify(
            body, {k: headers[k] for k in ("webhook-id", "webhook-timestamp",
                                           "webhook-signature")})
        assert callback["code"] == 200 and callback["data"]["taskId"] == task
        assert set(callback["data"]["videoInfo"]) >= {"videoUrl", "imageUrl"}

        r = c.post("/kie/api/v1/runway/extend", json={
            "taskId": task, "prompt": "The cat continues dancing", "quality": "720p"})
        if r.status_code == 422:  # no extend engine on this install
            pytest.skip(r.json()["msg"])
        extended = _task(r)
        detail = c.get(DETAIL, params={"taskId": extended}).json()["data"]
        assert detail["parentTaskId"] == task


def test_duration_quality_ratio_and_prompt_rules(idle, media):
    _, key = idle.account()
    image = f"{media.url}/photo.jpg"
    with _client(idle, key) as c:
        msg = _error(c.post(GEN, json={"prompt": "x", "imageUrl": image, "duration": 10,
                                       "quality": "1080p"}), 422)
        assert "1080p" in msg and "720p" in msg
        _task(c.post(GEN, json={"prompt": "x", "imageUrl": image, "duration": 5,
                                "quality": "1080p"}))
        _task(c.post(GEN, json={"prompt": "x", "imageUrl": image, "duration": 10,
                                "quality": "720p", "aspectRatio": "4:3"}))
        assert "16:9" in _error(c.post(GEN, json={"prompt": "x", "imageUrl": image,
                                                  "aspectRatio": "21:9"}), 422)
        _error(c.post(GEN, json={"prompt": "x", "imageUrl": image, "duration": 7}), 422)
        _error(c.post(GEN, json={"prompt": "   ", "imageUrl": image}), 422)
        _error(c.post(GEN, json={"imageUrl": image}), 422)
        msg = _error(c.post(GEN, json={"prompt": "A fluffy orange cat dancing"}), 422)
        assert "text_to_video" in msg and "REELFORGE_DIFFUSERS_MODEL" in msg
        assert "REELFORGE_RUNWAY_API_KEY" in msg  # the fix names the settings
        _error(c.post(GEN, json={"prompt": "x", "imageUrl": f"{media.url}/missing.jpg"}), 451)
        _error(c.get(DETAIL, params={"taskId": str(uuid.uuid4())}), 404)
        _error(c.get(DETAIL, params={"taskId": "not-a-uuid"}), 404)
        _error(c.post("/kie/api/v1/runway/extend", json={"taskId": str(uuid.uuid4()),
                                                          "prompt": "more"}), 404)
    with httpx.Client(base_url=idle.url) as c:
        _error(c.post(GEN, json={"prompt": "x"}), 401)
        _error(c.post(GEN, json={"prompt": "x"}, headers={"Authorization": "Bearer nope"}), 401)
    _, broke = idle.account(credits=0)
    with _client(idle, broke) as c:
        _error(c.post(GEN, json={"prompt": "x", "imageUrl": image}), 402)


def test_states_wait_queueing_and_expiry(idle, media):
    _, key = idle.account()
    with _client(idle, key) as c:
        first = _task(c.post(GEN, json={"prompt": "x", "imageUrl": f"{media.url}/photo.jpg"}))
        second = _task(c.post(GEN, json={"prompt": "y", "imageUrl": f"{media.url}/photo.jpg"}))
        states = [c.get(DETAIL, params={"taskId": t}).json()["data"] for t in (first, second)]
        assert states[1]["state"] == "queueing" and states[1]["videoInfo"] is None
        assert states[0]["state"] in ("wait", "queueing")
        # a job past the retention period has expireFlag 1
        job_id = _job(second)
        with idle.runtime.db.session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(
                status="succeeded", expires_at=datetime.now(timezone.utc) - timedelta(days=1)))
        data = c.get(DETAIL, params={"taskId": second}).json()["data"]
        assert data["state"] == "success" and data["expireFlag"] == 1


def test_aleph_https_size_seed_and_reference(idle, media):
    _, key = idle.account()
    with _client(idle, key) as c:
        body = {"prompt": "Transform into a dreamy watercolor painting style",
                "videoUrl": "http://example.com/input-video.mp4", "aspectRatio": "16:9"}
        assert "https" in _error(c.post(ALEPH, json=body), 400)
        _error(c.post(ALEPH, json={**body, "videoUrl": f"{media.url}/big.bin"}), 413)
        _error(c.post(ALEPH, json={**body, "videoUrl": f"{media.url}/clip.mp4",
                                   "aspectRatio": "4:5"}), 422)
        _error(c.post(ALEPH, json={"prompt": "x"}), 422)
        r = c.post(ALEPH, json={**body, "videoUrl": f"{media.url}/clip.mp4", "seed": 123456,
                                "referenceImage": f"{media.url}/photo.jpg",
                                "waterMark": "YourBrand", "uploadCn": False, "aspectRatio": "21:9"})
        if r.status_code == 422:
            pytest.skip(r.json()["msg"])  # no video_to_video engine on this install
        task = _task(r)
        data = c.get("/kie/api/v1/aleph/record-detail", params={"taskId": task}).json()["data"]
        assert data["state"] in ("wait", "queueing")
        assert data["generateParam"]["referenceImage"].endswith("/photo.jpg")
        _error(c.get(DETAIL, params={"taskId": task}), 404)
        with idle.runtime.db.session() as s:
            job = s.get(Job, _job(task))
            assert job.options["seed"] == 123456 and job.options["aspect_ratio"] == "21:9"
            assert job.options["watermark"] == "YourBrand" and "reference_image" in job.inputs


def _job(task: str) -> str:
    from reelforge.api.dialects.common import job_from_uuid

    return job_from_uuid(task)


def test_failure_callback_shape(idle):
    from reelforge.api.dialects import kie

    job = Job(id="job_01jx0000000000000000000000", status="failed", outputs={},
              error={"code": "media_error", "message": "could not decode", "fix": "re-encode"})
    body = kie.callback(job, idle.settings)
    assert body["code"] == 400 and body["msg"] == "could not decode"
    assert body["data"]["taskId"] == kie.common.job_uuid(job.id)
