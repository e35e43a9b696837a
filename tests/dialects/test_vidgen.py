"""vidgen (seed 001) over HTTP on loopback: jobs, limits, errors and signed webhooks."""

from __future__ import annotations

import hashlib
import hmac

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from reelforge.api.dialects import vidgen

from .conftest import key_client, poll, webhook_secret


def _files(media_dir, image="photo.jpg", audio="voice.wav", image_type="image/jpeg",
           audio_type="audio/wav"):
    return {"image": (image, (media_dir / "photo.jpg").read_bytes(), image_type),
            "audio": (audio, (media_dir / "voice.wav").read_bytes(), audio_type)}


def _error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    assert isinstance(r.json()["error"], str)
    return r.json()["error"]


def test_health_needs_no_key(idle):
    r = httpx.get(f"{idle.url}/vidgen/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_both_401s(idle):
    with httpx.Client(base_url=idle.url) as c:
        assert _error(c.get("/vidgen/api/jobs"), 401) == "Missing X-API-Key header."
        r = c.get("/vidgen/api/jobs", headers={"X-API-Key": "nope"})
        assert _error(r, 401) == "API key not recognized or has been deactivated."


def test_submit_status_list_cancel_and_one_active_job(idle, media_dir):
    _, key = idle.account()
    with key_client(idle, key) as c:
        r = c.post("/vidgen/api/jobs", files=_files(media_dir))
        assert r.status_code == 201, r.text
        assert r.json()["message"] == "Job created"
        first = r.json()["jobId"]
        assert first.startswith("cl")
        assert int(r.headers["RateLimit-Limit"]) == vidgen.SUBMIT_PER_MINUTE
        assert int(r.headers["RateLimit-Remaining"]) == vidgen.SUBMIT_PER_MINUTE - 1
        assert int(r.headers["RateLimit-Reset"]) <= 60

        # one active job per key
        assert "active" in _error(c.post("/vidgen/api/jobs", files=_files(media_dir)), 409)

        status = c.get(f"/vidgen/api/status/{first}").json()
        assert status == {**status, "jobId": first, "status": "PENDING", "progress": 0,
                          "outputVideo": None, "outputShareLink": None, "errorMessage": None}
        assert status["createdAt"].endswith("Z") and len(status["createdAt"]) == 24

        assert c.delete(f"/vidgen/api/jobs/{first}").json() == {
            "success": True, "message": "Job cancelled successfully"}
        assert "cancel" in _error(c.post(f"/vidgen/api/jobs/{first}/cancel"), 409)
        assert c.get(f"/vidgen/api/status/{first}").json()["status"] == "CANCELLED"

        second = c.post("/vidgen/api/jobs", files=_files(media_dir)).json()["jobId"]
        assert c.post(f"/vidgen/api/jobs/{second}/cancel").json()["success"] is True
        third = c.post("/vidgen/api/jobs", files=_files(media_dir)).json()["jobId"]

        page = c.get("/vidgen/api/jobs", params={"limit": 2}).json()
        assert [j["id"] for j in page["jobs"]] == [third, second]
        assert page["pagination"]["limit"] == 2 and page["pagination"]["hasNextPage"] is True
        item = page["jobs"][0]
        assert set(item) == {"id", "status", "outputVideo", "outputShareLink", "errorMessage",
                             "retries", "createdAt", "updatedAt", "webhookUrl"}
        assert item["retries"] == 0 and item["webhookUrl"] is None
        rest = c.get("/vidgen/api/jobs", params={"limit": 2,
                                                  "cursor": page["pagination"]["nextCursor"]})
        assert [j["id"] for j in rest.json()["jobs"]] == [first]
        assert rest.json()["pagination"] == {"limit": 2, "nextCursor": None,
                                             "hasNextPage": False}
        cancelled = c.get("/vidgen/api/jobs", params={"status": "CANCELLED"}).json()["jobs"]
        assert {j["id"] for j in cancelled} == {first, second}
        assert "status" in _error(c.get("/vidgen/api/jobs", params={"status": "DONE"}), 400)
        _error(c.get("/vidgen/api/jobs", params={"limit": 0}), 400)
        _error(c.get("/vidgen/api/jobs", params={"limit": 101}), 400)
        _error(c.get("/vidgen/api/status/clnope"), 404)
        c.delete(f"/vidgen/api/jobs/{third}")


def test_bad_uploads_400_413_415(idle, media_dir, monkeypatch):
    _, key = idle.account()
    with key_client(idle, key) as c:
        r = c.post("/vidgen/api/jobs", files={"image": _files(media_dir)["image"]})
        assert "audio" in _error(r, 400)
        r = c.post("/vidgen/api/jobs", json={"image": "x"})
        _error(r, 400)
        r = c.post("/vidgen/api/jobs", files=_files(media_dir, image_type="image/gif"))
        _error(r, 415)
        r = c.post("/vidgen/api/jobs", files=_files(media_dir, audio="a.flac",
                                                    audio_type="audio/flac"))
        _error(r, 415)
        r = c.post("/vidgen/api/jobs", files=_files(media_dir),
                   data={"webhookUrl": "http://example.com/hook"})
        if not idle.settings.allow_http_webhooks:
            assert "https" in _error(r, 400)
        monkeypatch.setattr(vidgen, "MAX_FILE_BYTES", 10_000)
        _error(c.post("/vidgen/api/jobs", files=_files(media_dir)), 413)
        assert c.get("/vidgen/api/jobs").json()["jobs"] == []


def test_https_webhooks_only(tmp_path, media_dir):
    from ..conftest import LiveServer
    from .conftest import sqlite_settings

    server = LiveServer(sqlite_settings(tmp_path, allow_http_webhooks=False),
                        start_workers=False)
    try:
        _, key = server.account()
        with key_client(server, key) as c:
            r = c.post("/vidgen/api/jobs", files=_files(media_dir),
                       data={"webhookUrl": "http://example.com/hook"})
            assert "https://" in _error(r, 400)
    finally:
        server.stop()


def test_submission_rate_limit(idle, media_dir, monkeypatch):
    monkeypatch.setattr(vidgen, "SUBMIT_PER_MINUTE", 2)
    _, key = idle.account()
    with httpx.Client(base_url=idle.url, headers={"X-API-Key": key}) as c:
        # the limiter counts per IP; other tests' submissions may already count here
        codes = [c.post("/vidgen/api/jobs").status_code for _ in range(3)]
    assert codes[-1] == 429 and set(codes) <= {400, 429}


def test_webhook_signed_as_the_node_snippet_checks(live, media_dir, receiver):
    _, key = live.account(plan="growth")
    with key_client(live, key) as c:
        r = c.post("/vidgen/api/jobs", files=_files(media_dir),
                   data={"webhookUrl": receiver.url})
        assert r.status_code == 201, r.text
        job_id = r.json()["jobId"]
        done = poll(lambda: c.get(f"/vidgen/api/status/{job_id}").json(),
                    lambda b: b["status"] not in ("PENDING", "PROCESSING"))
        listed = c.get("/vidgen/api/jobs").json()["jobs"][0]
    assert listed["webhookUrl"] == receiver.url
    headers, body = receiver.wait()[0]
    secret = webhook_secret(live, key)
    # crypto.createHmac('sha256', process.env.WEBHOOK_SECRET).update(req.body).digest('hex')
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-webhook-signature"], expected)
    Webhook(secret).verify(body, {k: headers[k] for k in ("webhook-id", "webhook-timestamp",
                                                          "webhook-signature")})
    event = receiver.json()
    assert event["jobId"] == job_id and event["status"] == done["status"]
    assert set(event) == set(done)
    if done["status"] == "COMPLETED":  # the image+audio engine is installed
        assert event["outputVideo"] and done["progress"] == 100
        assert httpx.get(done["outputVideo"]).content[4:8] == b"ftyp"
        share = httpx.get(done["outputShareLink"])
        assert share.status_code == 200 and "<video" in share.text
        assert httpx.get(done["outputShareLink"].replace("sig=", "sig=0")).status_code == 403
    else:
        assert done["status"] == "FAILED" and event["errorMessage"]


@pytest.mark.parametrize("path", ["/vidgen/api/status/clx", "/vidgen/api/jobs/clx/cancel"])
def test_errors_are_error_field_json(idle, path):
    with httpx.Client(base_url=idle.url) as c:
        r = c.request("GET" if "status" in path else "POST", path)
    assert r.status_code == 401 and set(r.json()) >= {"error"}
