"""Qamera (seed 003) over HTTP on loopback: library, register videos and reels,
reserve/consume/refund, correlation ids, voting."""

from __future__ import annotations

import logging

import httpx
import pytest

from .conftest import key_client, poll

EXT = "/qamera/api/external"


def _client(server, key: str) -> httpx.Client:
    return key_client(server, key, header="X-Api-Key")


def _upload(c: httpx.Client, media_dir, name: str = "photo.jpg", **data) -> str:
    r = c.post(f"{EXT}/images", files={"file": (name, (media_dir / name).read_bytes())},
               data=data)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] and body["correlationId"] == r.headers["X-Correlation-Id"]
    return body


def _account(server, key: str) -> dict:
    with server.client(key) as c:
        return c.get("/v1/account").json()


def test_video_reserved_then_consumed(live, media_dir):
    _, key = live.account(credits=500)
    with _client(live, key) as c:
        image = _upload(c, media_dir)
        assert image.startswith("img_")
        assert c.get(f"{EXT}/images/{image}").json()["width"] == 640
        before = _account(live, key)
        r = c.post(f"{EXT}/video-picker/register-videos",
                   json={"imageId": image, "suggestion": "Slow zoom in with subtle rotation",
                         "provider": "pollo"})
        assert r.status_code == 200, r.text
        created = r.json()
        assert set(created) == {"createdRecordIds", "batchId", "orderId", "reservationId",
                                "creditsReserved", "correlationId"}
        record = created["createdRecordIds"][0]
        assert record.startswith("vid_") and created["batchId"].startswith("batch_")
        assert created["orderId"].startswith("order_")
        assert created["reservationId"].startswith("res_") and created["creditsReserved"] > 0
        reserved = _account(live, key)
        assert reserved["balance"] == before["balance"] - created["creditsReserved"]
        assert reserved["held"] == created["creditsReserved"]

        def find() -> dict:
            return next(v for v in c.get(f"{EXT}/videos").json()["videos"] if v["id"] == record)

        video = poll(find, lambda v: v["status"] in ("DONE", "FAILED"))
        assert video["status"] == "DONE", video
        assert video["name"] == "Slow zoom in with subtle rotation"
        assert video["voting"] == "PENDING" and video["createdAt"].endswith("Z")
        assert httpx.get(video["videoUrl"]).content[4:8] == b"ftyp"
        assert httpx.get(video["thumbnail"]).content[:2] == b"\xff\xd8"
        consumed = _account(live, key)
        assert consumed["held"] == 0
        assert consumed["balance"] == before["balance"] - created["creditsReserved"]
        listing = c.get(f"{EXT}/videos").json()
        assert listing["count"] == len(listing["videos"]) == 1

        voted = c.patch(f"{EXT}/videos/{record}", json={"voting": "APPROVED"})
        assert voted.json()["voting"] == "APPROVED"
        assert find()["voting"] == "APPROVED"
        _error(c.patch(f"{EXT}/videos/{record}", json={"voting": "MAYBE"}), 400)


def test_reel_and_refund_on_cancel(idle, media_dir):
    _, key = idle.account(credits=500)
    with _client(idle, key) as c:
        images = [_upload(c, media_dir), _upload(c, media_dir, "second.jpg", generated="true")]
        assert images[1].startswith("gimg_")
        before = _account(idle, key)
        r = c.post(f"{EXT}/reel/register-reel", json={"imagesIds": images + [images[0]]})
        if r.status_code == 400 and "reel" in r.json()["error"]:
            pytest.skip("no reel engine on this install")
        assert r.status_code == 200, r.text
        created = r.json()
        assert created["createdRecordIds"][0].startswith("reel_")
        assert _account(idle, key)["held"] == created["creditsReserved"]
        videos = c.get(f"{EXT}/videos").json()["videos"]
        assert videos[0]["status"] == "PENDING" and videos[0]["type"] == "REEL"
        # a job that does not complete is refunded (cancelled here through the core API)
        job_id = "job_" + created["createdRecordIds"][0].removeprefix("reel_")
        with idle.client(key) as native:
            assert native.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
        after = _account(idle, key)
        assert after["held"] == 0 and after["balance"] == before["balance"]
        assert c.get(f"{EXT}/videos").json()["videos"][0]["status"] == "CANCELLED"


def test_register_rules(idle, media_dir):
    _, key = idle.account()
    with _client(idle, key) as c:
        image = _upload(c, media_dir)
        reg = f"{EXT}/video-picker/register-videos"
        e = _error(c.post(reg, json={"imageId": image, "generatedImageId": "gimg_" + image[4:]}),
                   400)
        assert "exactly one" in e["error"]
        _error(c.post(reg, json={"suggestion": "zoom"}), 400)
        _error(c.post(reg, json={"imageId": "img_" + "0" * 26}), 400)
        _error(c.post(reg, json={"imageId": "nope"}), 400)
        _error(c.post(reg, content=b"not json", headers={"Content-Type": "application/json"}),
               400)
        r = c.post(reg, json={"generatedImageId": "gimg_" + image[4:]})
        assert r.status_code == 200, r.text
        reel = f"{EXT}/reel/register-reel"
        assert "1 to 10" in _error(c.post(reel, json={"imagesIds": []}), 400)["error"]
        _error(c.post(reel, json={"imagesIds": [image] * 11}), 400)
        _error(c.post(reel, json={}), 400)
    _, other = idle.account()
    with _client(idle, other) as c:  # another account's image is not in your library
        _error(c.post(f"{EXT}/video-picker/register-videos", json={"imageId": image}), 400)


def test_auth_credits_and_correlation_ids(idle, media_dir, caplog):
    with httpx.Client(base_url=idle.url) as c:
        r = c.get(f"{EXT}/videos")
        _error(r, 401)
        r = c.get(f"{EXT}/videos", headers={"X-Api-Key": "mk_live_abc123.secret456"})
        assert _error(r, 401)["code"] == "invalid_key"
    _, key = idle.account(credits=1)
    with _client(idle, key) as c:
        minted = c.post(f"{EXT}/api-keys", json={"name": "shop"}).json()["apiKey"]
        assert minted.startswith("mk_live_") and "." in minted
        image = _upload(c, media_dir)
    with _client(idle, minted) as c, caplog.at_level(logging.INFO, logger="reelforge"):
        r = c.get(f"{EXT}/videos", headers={"X-Correlation-Id": "shop-42"})
        assert any("correlationId=shop-42" in rec.getMessage() for rec in caplog.records)
        assert r.json() == {"videos": [], "count": 0, "correlationId": "shop-42"}
        assert r.headers["X-Correlation-Id"] == "shop-42"
        r = c.get(f"{EXT}/videos")
        assert r.json()["correlationId"] == r.headers["X-Correlation-Id"] == \
            r.headers["X-Request-Id"]
        r = c.post(f"{EXT}/video-picker/register-videos", json={"imageId": image},
                   headers={"X-Correlation-Id": "order-7"})
        e = _error(r, 402)
        assert e["correlationId"] == "order-7" and e["code"] == "insufficient_credits"
