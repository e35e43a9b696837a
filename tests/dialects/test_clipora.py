"""Clipora (seed 002) over HTTP and WebSocket on loopback.

Jobs whose clips are rendered are made here through the core (claim, progress,
complete with clip files) so the translation is tested whether or not this install
has a clips engine; uploads are checked to create a job or to answer 503 in Clipora's
shape when no engine can make clips.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from reelforge.core import jobs, leases
from reelforge.core.submission import InputRef
from reelforge.api.dialects import common
from reelforge.db.models import Account, Job

from .conftest import key_client

API = "/clipora/api"


def _error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    return r.json()["error"]


def _signup(server, email: str, password: str = "correct horse") -> httpx.Client:
    c = httpx.Client(base_url=server.url, timeout=30)
    r = c.post(f"{API}/auth/signup", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    return c


def test_signup_login_logout_and_cookie(idle):
    c = _signup(idle, "Ana@Example.com")
    assert "reels_session" in c.cookies
    login = c.post(f"{API}/auth/login", json={"email": "ana@example.com",
                                               "password": "correct horse"})
    assert login.json()["user"]["email"] == "ana@example.com"
    set_cookie = login.headers["set-cookie"]
    assert set_cookie.startswith("reels_session=") and "HttpOnly" in set_cookie
    assert "samesite=lax" in set_cookie.lower()
    me = c.get(f"{API}/auth/me").json()
    assert me["user"]["email"] == "ana@example.com" and me["auth"] == "session"
    r = c.post(f"{API}/auth/signup", json={"email": "ana@example.com", "password": "x" * 9})
    assert "exists" in _error(r, 409)
    r = httpx.post(f"{idle.url}{API}/auth/login", json={"email": "ana@example.com",
                                                        "password": "wrong pass"})
    _error(r, 401)
    _error(httpx.post(f"{idle.url}{API}/auth/signup", json={"email": "b@x.io",
                                                           "password": "short"}), 400)
    c.post(f"{API}/auth/logout")
    assert "reels_session" not in c.cookies
    _error(c.get(f"{API}/auth/me"), 401)
    # a forged cookie is no session
    _error(httpx.get(f"{idle.url}{API}/jobs", cookies={"reels_session": "acct_x.9999999999.00"}),
           401)


def _set_plan(server, email: str, plan: str) -> None:
    from sqlalchemy import update

    with server.runtime.db.session() as s:
        s.execute(update(Account).where(Account.email == email).values(plan=plan))


def test_keys_are_session_only_and_shown_once(idle):
    c = _signup(idle, "keys@example.com")
    r = c.post(f"{API}/keys", json={"name": "ci"})
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    assert key.startswith("ck_live_") and len(key) == len("ck_live_") + 43  # 256 bits
    listing = c.get(f"{API}/keys").json()["keys"]
    assert len(listing) == 1 and "key" not in listing[0]
    with key_client(idle, key) as k:
        assert k.get(f"{API}/jobs").json() == {"jobs": []}
        assert k.get(f"{API}/auth/me").json()["auth"] == "api_key"
        assert "keys" in _error(k.get(f"{API}/keys"), 403)
        _error(k.post(f"{API}/keys", json={}), 403)
        _error(k.post(f"{API}/billing/checkout"), 403)
        _error(k.post(f"{API}/billing/portal"), 403)
    with httpx.Client(base_url=idle.url, headers={"Authorization": f"Bearer {key}"}) as k:
        assert k.get(f"{API}/jobs").status_code == 200
    assert "Billing" in _error(c.post(f"{API}/billing/checkout"), 503)
    # a wrong key is 401 at once, even with a valid session cookie alongside
    _error(c.get(f"{API}/jobs", headers={"X-API-Key": "ck_live_wrong"}), 401)
    key_id = listing[0]["id"]
    assert c.delete(f"{API}/keys/{key_id}").json()["revoked"] is True
    with key_client(idle, key) as k:
        _error(k.get(f"{API}/jobs"), 401)
    _set_plan(idle, "keys@example.com", "enterprise")  # starter allows 10 requests a minute
    codes = [c.post(f"{API}/keys", json={}).status_code for _ in range(11)]
    assert codes[:10] == [201] * 10 and codes[10] == 409


def test_plans_are_public(idle):
    plans = httpx.get(f"{idle.url}{API}/billing/plans").json()["plans"]
    assert {p["id"] for p in plans} >= {"starter", "growth", "enterprise"}
    _error(httpx.get(f"{idle.url}{API}/jobs"), 401)


def test_upload_and_url_upload(idle, media, media_dir):
    _, key = idle.account()
    with key_client(idle, key) as c:
        _error(c.post(f"{API}/upload", files={"other": ("a.mp4", b"x")}), 400)
        assert _error(c.post(f"{API}/upload", data={"x": "1"}), 400) == "video file required"
        video = ("interview.mp4", (media_dir / "clip.mp4").read_bytes(), "video/mp4")
        for bad in ('{"numClips": 11}', '{"clipLength": "epic"}', '{"captionPreset": "neon"}',
                    '{"aspectRatio": "4:3"}', "not json", '{"trimStart": 5, "trimEnd": 2}'):
            _error(c.post(f"{API}/upload", files={"video": video}, data={"options": bad}), 400)
        r = c.post(f"{API}/upload", files={"video": video},
                   data={"options": json.dumps({"numClips": 2, "captionPreset": "mozi"})})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["originalName"] == "interview.mp4" and body["sizeBytes"] > 1000
        assert body["wsUrl"] == f"/clipora/ws?jobId={body['jobId']}"
        assert body["options"]["numClips"] == 2 and body["options"]["clipLength"] == "medium"
        job = c.get(f"{API}/jobs/{body['jobId']}").json()
        assert job["status"] == "queued" and job["originalName"] == "interview.mp4"
        # a link is answered at once; the job downloads it in its `downloading` stage
        r = c.post(f"{API}/upload/url", json={"url": f"{media.url}/clip.mp4",
                                              "options": {"numClips": 4}})
        assert r.status_code == 200, r.text
        assert r.json()["originalName"] == "clip.mp4" and r.json()["sizeBytes"] is None
        with idle.runtime.db.session() as s:
            queued = s.get(Job, common.job_from_suffix(r.json()["jobId"]))
            assert queued.options["source_url"] == f"{media.url}/clip.mp4"
            assert queued.inputs == {}
        r = c.post(f"{API}/upload/url", json={"url": "http://169.254.169.254/latest/x.mp4"})
        assert r.status_code == 400 and r.json()["error"]
        _error(c.post(f"{API}/upload/url", json={"url": "ftp://x/y.mp4"}), 400)
        _error(c.post(f"{API}/upload/url", json={"options": {}}), 400)


# ------------------------------------------------------------------ clips jobs via the core

def _clips_job(server, account_id: str, media_dir: Path) -> str:
    rt = server.runtime
    with rt.db.session() as s:
        account = s.get(Account, account_id)
    with (media_dir / "clip.mp4").open("rb") as fh:
        asset = rt.submitter.ingest(account, InputRef(stream=fh), "video")
    opts = {"mode": "ai", "numClips": 1, "clipLength": "short", "aspectRatio": "9:16",
            "captionPreset": "mozi"}
    job, _ = jobs.submit(rt.db, rt.settings, account_id, jobs.SubmitRequest(
        mode="clips", engine="local", inputs={"video": asset.id}, options={}, cost=0,
        dialect="clipora", meta={"originalName": "talk.mp4", "options": opts}),
        enqueue=lambda job: None)
    return job.id


def _finish(server, job_id: str, media_dir: Path, tmp: Path, pause: float = 0.0) -> None:
    rt = server.runtime
    job = leases.claim(rt.db, job_id, "test-worker", 30)
    time.sleep(pause)
    leases.heartbeat(rt.db, job_id, job.attempt, 30, stage="downloading", progress=3)
    rt.progress.publish(job_id)
    time.sleep(pause)
    leases.heartbeat(rt.db, job_id, job.attempt, 30, stage="rendering", progress=50)
    rt.progress.publish(job_id)
    time.sleep(pause)
    manifest = {"jobId": "ignored", "duration": 2.0, "clipCount": 1, "clips": [{
        "index": 1, "start": 0.0, "end": 2.0, "duration": 2.0, "score": 7.5,
        "transcript": "hello", "downloadUrl": "/api/clips/x/clip_01.mp4",
        "posterUrl": "/api/clips/x/clip_01.jpg", "aspectRatio": "9:16",
        "metadata": {"title": "t", "viral_hook": "h", "key_insight": "k",
                     "dominant_emotion": "joy", "hashtags": ["a"], "viral_score": 7.5}}]}
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    (tmp / "clip_01.ass").write_text("[Script Info]\n")
    shutil.copy(media_dir / "clip.mp4", tmp / "clip_01.mp4")
    shutil.copy(media_dir / "photo.jpg", tmp / "clip_01.jpg")
    outputs = {}
    for name, filename, ctype in (("clip_01", "clip_01.mp4", "video/mp4"),
                                  ("clip_01_poster", "clip_01.jpg", "image/jpeg"),
                                  ("clip_01_captions", "clip_01.ass", "text/x-ssa"),
                                  ("manifest", "manifest.json", "application/json")):
        key = f"jobs/{job_id}/a{job.attempt}/{filename}"
        stored = rt.storage.put_file(key, tmp / filename, ctype)
        outputs[name] = {"key": key, "content_type": ctype, "bytes": stored.size,
                         "filename": filename}
    assert leases.complete(rt.db, rt.settings, job_id, job.attempt, outputs, 1.0)
    rt.progress.publish(job_id)


def test_jobs_clips_manifest_and_files(idle, media_dir, tmp_path):
    account_id, key = idle.account()
    _, other = idle.account()
    job_id = _clips_job(idle, account_id, media_dir)
    public = job_id.removeprefix("job_")
    with key_client(idle, key) as c:
        job = c.get(f"{API}/jobs/{public}").json()
        assert job["status"] == "queued" and job["clipCount"] == 0 and job["posterUrl"] is None
        assert job["originalName"] == "talk.mp4" and isinstance(job["createdAt"], int)
        assert "not ready" in _error(c.get(f"{API}/clips/{public}"), 404)
        _finish(idle, job_id, media_dir, tmp_path)
        listed = c.get(f"{API}/jobs").json()["jobs"]
        assert [j["id"] for j in listed] == [public]
        assert listed[0] == {**listed[0], "status": "completed", "clipCount": 1,
                             "posterUrl": f"/clipora/api/clips/{public}/clip_01.jpg"}
        manifest = c.get(f"{API}/clips/{public}").json()
        assert manifest["jobId"] == public and manifest["clipCount"] == 1
        clip = manifest["clips"][0]
        assert clip["downloadUrl"] == f"/clipora/api/clips/{public}/clip_01.mp4"
        assert clip["posterUrl"] == f"/clipora/api/clips/{public}/clip_01.jpg"
        assert clip["metadata"]["viral_score"] == 7.5 and clip["transcript"] == "hello"
        for filename, magic in (("clip_01.mp4", b"ftyp"), ("clip_01.jpg", b"\xff\xd8"),
                                ("clip_01.ass", b"[Scr"), ("manifest.json", b'{"jo')):
            r = c.get(f"{API}/clips/{public}/{filename}")
            assert r.status_code == 200, (filename, r.text)
            assert magic in r.content[:8]
            assert "max-age=31536000" in r.headers["cache-control"]
        r = c.get(clip["downloadUrl"], headers={"Range": "bytes=0-9"})
        assert r.status_code == 206 and len(r.content) == 10
        for bad in ("clip_1.mp4", "secret.txt", "clip_01.mov"):
            _error(c.get(f"{API}/clips/{public}/{bad}"), 400)
        _error(c.get(f"{API}/clips/{public}/clip_02.mp4"), 404)
        _error(c.get(f"{API}/jobs/{'0' * 26}"), 404)
    with httpx.Client(base_url=idle.url) as anon:
        _error(anon.get(f"{API}/clips/{public}/clip_01.mp4"), 401)
    with key_client(idle, other) as c:
        _error(c.get(f"{API}/jobs/{public}"), 403)
        _error(c.get(f"{API}/clips/{public}"), 403)
        _error(c.get(f"{API}/clips/{public}/clip_01.mp4"), 403)
        assert c.get(f"{API}/jobs").json() == {"jobs": []}


def test_websocket_progress_auth_and_ownership(idle, media_dir, tmp_path):
    account_id, key = idle.account()
    _, other = idle.account()
    job_id = _clips_job(idle, account_id, media_dir)
    public = job_id.removeprefix("job_")
    ws_url = idle.url.replace("http://", "ws://") + f"/clipora/ws?jobId={public}"

    for headers, code in (({}, 4401), ({"X-API-Key": "ck_live_bad"}, 4401),
                          ({"X-API-Key": other}, 4403)):
        with connect(ws_url, additional_headers=headers) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "error"
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd.code == code
    with connect(ws_url.replace(public, "nope"), additional_headers={"X-API-Key": key}) as ws:
        ws.recv(timeout=10)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd.code == 4404

    messages = []
    with connect(ws_url, additional_headers={"X-API-Key": key}) as ws:
        messages.append(json.loads(ws.recv(timeout=10)))
        worker = threading.Thread(target=_finish, args=(idle, job_id, media_dir, tmp_path, 0.3))
        worker.start()
        try:
            while True:
                messages.append(json.loads(ws.recv(timeout=20)))
        except ConnectionClosed as exc:
            assert exc.rcvd is None or exc.rcvd.code == 1000
        worker.join()
    assert messages[0] == {"type": "progress", "jobId": public, "status": "queued",
                           "stage": "queued", "progress": 0, "error": None}
    assert messages[-1]["type"] == "completed" and messages[-1]["progress"] == 100
    statuses = [m["status"] for m in messages]
    assert "processing" in statuses and statuses[-1] == "completed"
    # the session cookie works for the socket too
    c = _signup(idle, "ws@example.com")
    cookie = f"reels_session={c.cookies['reels_session']}"
    with connect(ws_url, additional_headers={"Cookie": cookie}) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "error"  # not this account's job


def test_http_get_on_ws_path_says_upgrade(idle):
    assert httpx.get(f"{idle.url}/clipora/ws?jobId=x").status_code == 426
