"""Dockora (seed 000) over HTTP on loopback: every documented field, status and error."""

from __future__ import annotations

import time

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from reelforge.api.dialects import dockora

from .conftest import key_client, poll, webhook_secret

GEN = "/dockora/api-generate"


def _error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == status and body["error"] and body["fix"], body
    return body


def test_image_to_video_end_to_end_with_webhook(live, media, receiver):
    _, key = live.account(plan="growth")
    with key_client(live, key) as c:
        r = c.post(GEN, json={"mode": "image_to_video", "image_url": f"{media.url}/photo.jpg",
                              "prompt": "Cinematic product reveal, slow zoom in",
                              "style": "cinematic", "webhook_url": receiver.url})
        assert r.status_code == 200, r.text
        task = r.json()
        assert set(task) == {"task_id", "status", "mode", "style", "credits_remaining",
                             "poll_url", "message"}
        assert task["task_id"].startswith("task_") and task["status"] == "pending"
        assert task["mode"] == "image_to_video" and task["style"] == "cinematic"
        assert task["poll_url"] == f"{live.url}/dockora/api-status?task_id={task['task_id']}"
        assert task["message"] == "Video generation started. Poll every 4 seconds."
        assert r.headers["X-Credits-Remaining"] == str(task["credits_remaining"])
        assert int(r.headers["X-RateLimit-Limit"]) == 30
        assert int(r.headers["X-RateLimit-Remaining"]) < 30
        assert int(r.headers["X-RateLimit-Reset"]) > time.time() - 1

        seen = set()

        def fetch() -> dict:
            body = c.get(task["poll_url"].removeprefix(live.url)).json()
            seen.add(body["status"])
            return body

        done = poll(fetch, lambda b: b["status"] in ("succeeded", "failed"))
        assert done["status"] == "succeeded", done
        assert seen <= {"pending", "processing", "succeeded"}
        assert done["duration"] == 10 and done["style"] == "cinematic"
        assert done["completed_at"].endswith("Z") and done["task_id"] == task["task_id"]
        video = httpx.get(done["video_url"])  # signed: no key needed
        assert video.status_code == 200 and video.content[4:8] == b"ftyp"

    headers, body = receiver.wait()[0]
    secret = webhook_secret(live, key)
    payload = Webhook(secret).verify(body, {k: headers[k] for k in
                                            ("webhook-id", "webhook-timestamp",
                                             "webhook-signature")})
    assert {"task_id", "status", "video_url", "mode", "style", "completed_at"} <= set(payload)
    assert payload["task_id"] == task["task_id"] and payload["status"] == "succeeded"
    assert payload["mode"] == "image_to_video" and payload["video_url"].startswith("http")


def test_video_to_video_is_gen4_aleph(idle, media):
    _, key = idle.account()
    with key_client(idle, key) as c:
        body = {"mode": "video_to_video", "video_url": f"{media.url}/clip.mp4",
                "prompt": "Transform into Studio Ghibli animation style",
                "transform_style": "restyle", "duration": 5}
        r = c.post(GEN, json=body)
        if r.status_code == 422 and "engine" in r.json()["fix"]:
            assert "video_to_video" in _error(r, 422)["error"]
            pytest.skip("no video_to_video engine on this install")
        assert r.status_code == 200, r.text
        task = r.json()
        assert task["mode"] == "video_to_video" and task["model"] == "gen4_aleph"
        assert task["duration"] == 5 and task["status"] == "pending"
        assert task["message"] == "Gen-4 Aleph transformation started. Poll every 4 seconds."
        status = c.get("/dockora/api-status", params={"task_id": task["task_id"]}).json()
        assert status["status"] == "pending" and status["video_url"] is None
        assert status["transform_style"] == "restyle"


def test_aleph_rules_and_validation(idle, media):
    _, key = idle.account()
    clip = f"{media.url}/clip.mp4"
    with key_client(idle, key) as c:
        e = _error(c.post(GEN, json={"mode": "video_to_video", "video_url": clip}), 422)
        assert "prompt" in e["error"]
        e = _error(c.post(GEN, json={"mode": "video_to_video", "video_url": clip,
                                     "prompt": "x" * 501}), 422)
        assert "500" in e["error"]
        e = _error(c.post(GEN, json={"mode": "video_to_video", "video_url": clip,
                                     "prompt": "relight", "duration": 7}), 422)
        assert "5 or 10" in e["fix"]
        e = _error(c.post(GEN, json={"mode": "video_to_video", "prompt": "relight"}), 422)
        assert "video_url" in e["error"]
        e = _error(c.post(GEN, json={"mode": "image_to_video"}), 422)
        assert "image_url" in e["error"]
        e = _error(c.post(GEN, json={"mode": "image_to_video", "style": "neon",
                                     "image_url": f"{media.url}/photo.jpg"}), 422)
        assert "cinematic" in e["fix"]
        e = _error(c.post(GEN, json={"mode": "audio_to_video"}), 422)
        assert "image_to_video" in e["fix"]
        e = _error(c.post(GEN, json={"prompt": "no mode"}), 422)
        e = _error(c.post(GEN, json={"mode": "image_to_video",
                                     "image_url": f"{media.url}/missing.jpg"}), 422)
        e = _error(c.get("/dockora/api-status", params={"task_id": "task_nope"}), 404)
        assert c.get("/dockora/api-status").status_code == 422


def test_text_to_video_is_refused_with_the_fix(idle):
    _, key = idle.account()
    with key_client(idle, key) as c:
        e = _error(c.post(GEN, json={"mode": "text_to_video", "prompt": "a cat",
                                     "style": "dreamy"}), 422)
        assert "text_to_video" in e["error"] and "REELFORGE_DIFFUSERS_MODEL" in e["fix"]


def test_auth_credits_plan_and_limits(idle, media):
    with httpx.Client(base_url=idle.url) as c:
        e = _error(c.post(GEN, json={"mode": "image_to_video"}), 401)
        assert "X-API-Key" in e["fix"]
        _error(c.get("/dockora/api-status?task_id=task_x", headers={"X-API-Key": "dk_nope"}),
               401)
    image = f"{media.url}/photo.jpg"
    _, broke = idle.account(plan="starter", credits=3)
    with key_client(idle, broke) as c:
        e = _error(c.post(GEN, json={"mode": "image_to_video", "image_url": image}), 402)
        assert e["credits_remaining"] == 3 and e["plan"] == "starter"
        # webhooks are for Growth and Enterprise only
        e = _error(c.post(GEN, json={"mode": "image_to_video", "image_url": image,
                                     "webhook_url": "https://example.com/hook"}), 403)
        assert "plan" in e["error"].lower()
    _, starter = idle.account(plan="starter", credits=1000)
    with key_client(idle, starter) as c:
        codes = [c.post(GEN, json={"mode": "image_to_video", "image_url": image}).status_code
                 for _ in range(3)]
        assert codes == [200, 200, 429]  # starter: 2 concurrent
        for _ in range(7):  # 10 requests a minute on starter
            c.get("/dockora/api-status", params={"task_id": "task_x"})
        r = c.get("/dockora/api-status", params={"task_id": "task_x"})
        e = _error(r, 429)
        assert r.headers["X-RateLimit-Remaining"] == "0" and int(r.headers["Retry-After"]) >= 1


def test_dk_keys_can_be_minted_and_used(idle):
    _, key = idle.account()
    with key_client(idle, key) as c:
        r = c.post("/dockora/api-keys", json={"name": "backend"})
    assert r.status_code == 201, r.text
    dk = r.json()["api_key"]
    assert dk.startswith("dk_") and len(dk) == 3 + 64
    with key_client(idle, dk) as c:
        assert c.get("/dockora/api-status", params={"task_id": "task_x"}).status_code == 404


def test_webhook_payload_on_failure_shape(idle):
    from reelforge.db.models import Job

    job = Job(id="job_01jx0000000000000000000000", mode="video_to_video", status="failed",
              options={"transform_style": "relight", "duration": 5},
              error={"code": "media_error", "message": "bad", "fix": "re-encode"}, outputs={})
    body = dockora.webhook_payload(job, idle.settings)
    assert body["status"] == "failed" and body["error"] == "bad" and body["fix"] == "re-encode"
    assert body["model"] == "gen4_aleph" and body["task_id"] == "task_01jx0000000000000000000000"
