"""The whole API on S3 storage: inputs up, outputs down (ranges, presigned redirects)."""

from __future__ import annotations

import uuid

import httpx

from reelforge.runtime import make_storage
from reelforge.storage.s3 import S3Storage

from ..conftest import LiveServer, make_jpeg, make_settings, wait_for
from .s3server import ACCESS_KEY, SECRET_KEY


def _s3_settings(tmp_path, moto_server, **kw):
    return make_settings(tmp_path, f"sqlite:///{tmp_path / 'rf.db'}",
                         storage_url=f"s3://rf-{uuid.uuid4().hex[:10]}/media",
                         s3_endpoint_url=moto_server.url, s3_access_key=ACCESS_KEY,
                         s3_secret_key=SECRET_KEY, **kw)


def test_make_storage_creates_the_bucket(tmp_path, moto_server):
    settings = _s3_settings(tmp_path, moto_server)
    storage = make_storage(settings)
    assert isinstance(storage, S3Storage) and storage.prefix == "media"
    assert storage.list_keys() == []
    assert "s3://" in storage.describe() and moto_server.url in storage.describe()
    make_storage(settings)  # the bucket exists now: still fine


def test_job_on_s3_storage(tmp_path, moto_server):
    live = LiveServer(_s3_settings(tmp_path, moto_server, s3_presigned_downloads=True))
    try:
        _, key = live.account("s3user")
        with live.client(key) as c:
            r = c.post("/v1/jobs", data={"mode": "image_to_video", "duration": "5"},
                       files={"image": ("p.jpg", make_jpeg(tmp_path / "p.jpg").read_bytes())})
            assert r.status_code == 201, r.text
            job = wait_for(c, r.json()["id"])
            assert job["status"] == "succeeded", job["error"]
            whole = c.get(f"/v1/jobs/{job['id']}/artifacts/video")
            assert whole.status_code == 200 and whole.content[4:8] == b"ftyp"
            part = c.get(f"/v1/jobs/{job['id']}/artifacts/video",
                         headers={"Range": "bytes=100-199"})
            assert part.status_code == 206 and part.content == whole.content[100:200]
        signed = job["outputs"]["video"]["url"]
        redirect = httpx.get(signed)
        assert redirect.status_code == 307
        assert redirect.headers["location"].startswith(moto_server.url)
        assert httpx.get(signed, follow_redirects=True).content == whole.content
        keys = live.runtime.storage.list_keys()
        outputs = {f"jobs/{job['id']}/a1/{facts['filename']}"
                   for facts in job["outputs"].values()}
        assert {"video", "poster"} <= set(job["outputs"])
        assert sorted(keys) == sorted([k for k in keys if k.startswith("assets/")] + [*outputs])
    finally:
        live.stop()
