"""The native API over real HTTP: auth, keys, limits, idempotency, jobs, errors, ops.

These run with no workers, so submitted jobs stay queued and can be inspected.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
from pathlib import Path

import pytest

from ..conftest import LiveServer, make_jpeg


@pytest.fixture
def api(settings):
    live = LiveServer(settings, start_workers=False)
    yield live
    live.stop()


@pytest.fixture
def asset_id(api, tmp_path):
    _, key = api.account("uploader")
    with api.client(key) as c:
        r = c.post("/v1/assets", files={"file": ("p.jpg", make_jpeg(tmp_path / "p.jpg").read_bytes())})
    assert r.status_code == 201, r.text
    return r.json()["id"], key


def _error(r):
    body = r.json()
    assert set(body["error"]) == {"code", "message", "fix"}, body
    return body["error"]


def test_keys_are_shown_once_hashed_and_revocable(api):
    _, key = api.account("keys")
    assert key.startswith("rf_live_") and len(key.split("_")[-1]) == 64  # 256-bit secret
    with api.client(key) as c:
        created = c.post("/v1/keys", json={"name": "ci"}).json()
        listing = c.get("/v1/keys").json()["data"]
    assert created["key"].startswith("rf_live_")
    with api.client(key) as c:
        qamera = c.post("/v1/keys", json={"format": "qamera"}).json()["key"]
        assert qamera.startswith("mk_live_") and "." in qamera
        assert c.post("/v1/keys", json={"format": "nope"}).status_code == 422
    with api.client(qamera) as c:
        assert c.get("/v1/account").status_code == 200
    assert all("key" not in k for k in listing)
    from reelforge.db.models import ApiKey
    with api.runtime.db.session() as s:
        row = s.get(ApiKey, created["id"])
        assert row.secret_hash == hashlib.sha256(created["key"].encode()).hexdigest()
    # X-API-Key works too; last_used_at is recorded
    with api.client() as c:
        assert c.get("/v1/account", headers={"X-API-Key": created["key"]}).status_code == 200
    with api.runtime.db.session() as s:
        assert s.get(ApiKey, created["id"]).last_used_at is not None
    with api.client(key) as c:
        assert c.delete(f"/v1/keys/{created['id']}").json()["revoked"] is True
    with api.client(created["key"]) as c:
        r = c.get("/v1/account")
    assert r.status_code == 401 and _error(r)["code"] == "revoked_key"


def test_missing_and_bad_keys_are_401_with_fix(api):
    with api.client() as c:
        r = c.get("/v1/jobs")
        assert r.status_code == 401 and "Authorization" in _error(r)["fix"]
        r = c.get("/v1/jobs", headers={"Authorization": "Bearer rf_live_nope_0000"})
        assert r.status_code == 401 and _error(r)["code"] == "invalid_key"


def test_at_most_ten_active_keys(api):
    _, key = api.account("tenkeys")
    with api.client(key) as c:
        codes = [c.post("/v1/keys", json={}).status_code for _ in range(10)]
    assert codes[:9] == [201] * 9 and codes[9] == 409


def test_rate_limit_headers_and_429(api):
    _, key = api.account("limited", plan="starter")
    with api.client(key) as c:
        first = c.get("/v1/account")
        assert first.headers["X-RateLimit-Limit"] == "10"
        assert first.headers["X-RateLimit-Remaining"] == "9"
        assert int(first.headers["X-RateLimit-Reset"]) > 0
        assert first.headers["RateLimit-Policy"] == '"minute";q=10;w=60, "day";q=50;w=86400'
        assert first.headers["RateLimit"].startswith('"minute";r=9;t=')
        assert first.headers["X-Credits-Remaining"] == "1000"
        for _ in range(9):
            assert c.get("/v1/account").status_code == 200
        r = c.get("/v1/account")
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert _error(r)["code"] == "rate_limited"


def test_request_id_is_echoed_and_minted(api):
    with api.client() as c:
        assert c.get("/healthz", headers={"X-Request-Id": "abc123"}).headers["X-Request-Id"] == "abc123"
        assert len(c.get("/healthz").headers["X-Request-Id"]) >= 8


def test_submit_list_get_cancel(api, asset_id):
    aid, key = asset_id
    with api.client(key) as c:
        ids = []
        for style in ("cinematic", "dreamy", "vintage"):
            r = c.post("/v1/jobs", json={"mode": "image_to_video", "image_asset_id": aid,
                                         "style": style, "duration": 5})
            assert r.status_code == 201, r.text
            job = r.json()
            assert job["status"] == "queued" and job["queue_position"] is not None
            assert job["cost"] > 0 and r.headers["X-Credits-Remaining"]
            ids.append(job["id"])
        page1 = c.get("/v1/jobs", params={"limit": 2}).json()
        assert [j["id"] for j in page1["data"]] == ids[::-1][:2] and page1["has_more"]
        page2 = c.get("/v1/jobs", params={"limit": 2, "cursor": page1["next_cursor"]}).json()
        assert [j["id"] for j in page2["data"]] == [ids[0]] and not page2["has_more"]
        before = c.get("/v1/account").json()
        cancelled = c.post(f"/v1/jobs/{ids[0]}/cancel").json()
        assert cancelled["status"] == "cancelled"
        after = c.get("/v1/account").json()
        assert after["balance"] == before["balance"] + cancelled["cost"]
        assert after["held"] == before["held"] - cancelled["cost"]
        r = c.post(f"/v1/jobs/{ids[0]}/cancel")
        assert r.status_code == 409 and _error(r)["code"] == "not_cancellable"
        only = c.get("/v1/jobs", params={"status": "cancelled"}).json()["data"]
        assert [j["id"] for j in only] == [ids[0]]
        assert c.get("/v1/jobs/job_doesnotexist").status_code == 404


def test_option_rules_are_refused_with_the_fix(api, asset_id):
    aid, key = asset_id
    with api.client(key) as c:
        r = c.post("/v1/jobs", json={"mode": "image_to_video", "image_asset_id": aid,
                                     "duration": 10, "quality": "1080p"})
        assert r.status_code == 422 and "720p" in _error(r)["fix"]
        r = c.post("/v1/jobs", json={"mode": "image_to_video", "image_asset_id": aid,
                                     "style": "neon"})
        assert r.status_code == 422 and "cinematic" in _error(r)["fix"]
        r = c.post("/v1/jobs", json={"mode": "image_to_video"})
        assert r.status_code == 422 and "image" in _error(r)["message"]
        r = c.post("/v1/jobs", json={"mode": "text_to_video", "prompt": "a cat"})
        assert r.status_code == 422 and _error(r)["code"] == "unsupported_mode"
        r = c.post("/v1/jobs", json={"mode": "warp_drive"})
        assert r.status_code == 422 and _error(r)["code"] == "unsupported_mode"


def test_estimate_prices_without_submitting(api):
    _, key = api.account("est")
    with api.client(key) as c:
        e5 = c.post("/v1/estimate", json={"mode": "image_to_video", "duration": 5}).json()
        e10 = c.post("/v1/estimate", json={"mode": "image_to_video", "duration": 10}).json()
        e1080 = c.post("/v1/estimate", json={"mode": "image_to_video", "duration": 5,
                                             "quality": "1080p"}).json()
        assert e10["cost"] > e5["cost"] and e1080["cost"] > e5["cost"]
        assert c.get("/v1/jobs").json()["data"] == []


def test_insufficient_credits_is_402(api, tmp_path):
    _, key = api.account("broke", credits=1)
    with api.client(key) as c:
        r = c.post("/v1/jobs", data={"mode": "image_to_video"},
                   files={"image": ("p.jpg", make_jpeg(tmp_path / "b.jpg").read_bytes())})
    assert r.status_code == 402 and _error(r)["code"] == "insufficient_credits"


def test_idempotency_same_body_same_job_other_body_422_concurrent_one_job(api, asset_id):
    aid, key = asset_id
    body = {"mode": "image_to_video", "image_asset_id": aid, "style": "minimal"}
    hdr = {"Idempotency-Key": "order-1"}
    with api.client(key) as c:
        a = c.post("/v1/jobs", json=body, headers=hdr)
        b = c.post("/v1/jobs", json=body, headers=hdr)
        assert a.status_code == 201 and b.status_code == 200
        assert a.json()["id"] == b.json()["id"]
        r = c.post("/v1/jobs", json={**body, "style": "luxury"}, headers=hdr)
        assert r.status_code == 422 and _error(r)["code"] == "idempotency_mismatch"

    def post(_: int):
        with api.client(key) as c2:
            r = c2.post("/v1/jobs", json=body, headers={"Idempotency-Key": "order-2"})
            return r.status_code, r.json()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(post, range(8)))
    made = {body["id"] for code, body in results if code in (200, 201)}
    assert len(made) == 1
    assert all(code in (200, 201, 409) for code, _ in results)
    assert [code for code, _ in results].count(201) == 1


def test_ops_endpoints(api):
    with api.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz").json()
        assert ready["checks"]["database"] == "ok"
        metrics = c.get("/metrics").text
        assert 'reelforge_jobs{status="queued"}' in metrics and "reelforge_queue_depth" in metrics
        assert c.get("/docs").status_code == 200
        assert "/v1/jobs" in c.get("/openapi.json").json()["paths"]
        engines = c.get("/v1/engines").json()["data"]
        assert engines[0]["name"] == "local" and "image_to_video" in engines[0]["modes"]
