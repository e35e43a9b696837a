"""One storage contract, every backend: the local directory and S3 (moto's server
mode on loopback, over real HTTP)."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from reelforge.db.models import Account, Asset, Job
from reelforge.db.session import Database
from reelforge.queue.sweeper import Reconciler, remove_expired_assets, sweep_once
from reelforge.storage.base import Storage
from reelforge.storage.local import LocalStorage

from ..conftest import make_settings

MiB = 1024 * 1024


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "media")
    # small parts, so that a 12 MiB file goes up as a 3-part multipart upload
    return request.getfixturevalue("moto_server").storage("media/v1", part_size=5 * MiB)


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_put_get_size_exists(storage, tmp_path):
    src = _file(tmp_path, "a.bin", b"hello world")
    stored = storage.put_file("jobs/j1/a1/video.mp4", src, "video/mp4")
    assert (stored.key, stored.size) == ("jobs/j1/a1/video.mp4", 11)
    assert storage.size("jobs/j1/a1/video.mp4") == 11
    assert storage.exists("jobs/j1/a1/video.mp4")
    out = storage.get_file("jobs/j1/a1/video.mp4", tmp_path / "back.bin")
    assert out.read_bytes() == b"hello world"
    storage.put_file("jobs/j1/a1/video.mp4", _file(tmp_path, "b.bin", b"v2"), "video/mp4")
    assert storage.size("jobs/j1/a1/video.mp4") == 2  # a second put replaces the object


def test_missing_keys(storage, tmp_path):
    assert not storage.exists("jobs/none/video.mp4")
    with pytest.raises(FileNotFoundError):
        storage.size("jobs/none/video.mp4")
    with pytest.raises(FileNotFoundError):
        storage.get_file("jobs/none/video.mp4", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    with pytest.raises(FileNotFoundError):
        list(storage.open_range("jobs/none/video.mp4"))
    assert storage.delete_prefix("jobs/none") == 0
    assert storage.list_keys("jobs/none") == []


def test_open_range(storage, tmp_path):
    data = bytes(range(256)) * 40  # 10240 bytes
    storage.put_file("k/data.bin", _file(tmp_path, "d.bin", data), "application/octet-stream")
    assert b"".join(storage.open_range("k/data.bin")) == data
    assert b"".join(storage.open_range("k/data.bin", 100, 199)) == data[100:200]
    assert b"".join(storage.open_range("k/data.bin", 10000)) == data[10000:]
    assert b"".join(storage.open_range("k/data.bin", 0, 0)) == data[:1]
    chunks = list(storage.open_range("k/data.bin", 0, None, chunk=1000))
    assert b"".join(chunks) == data and max(map(len, chunks)) <= 1000 and len(chunks) >= 11


def test_prefixes_are_directories(storage, tmp_path):
    src = _file(tmp_path, "x", b"x")
    for key in ("jobs/j1/a1/video.mp4", "jobs/j1/a1/poster.jpg", "jobs/j1/a10/video.mp4",
                "jobs/j10/a1/video.mp4", "assets/acc/asset_1.jpg"):
        storage.put_file(key, src, "application/octet-stream")
    assert storage.list_keys("jobs/j1/a1") == ["jobs/j1/a1/poster.jpg", "jobs/j1/a1/video.mp4"]
    assert storage.list_keys("jobs/j1/a1/") == storage.list_keys("jobs/j1/a1")
    assert storage.list_keys("jobs/j1") == ["jobs/j1/a1/poster.jpg", "jobs/j1/a1/video.mp4",
                                            "jobs/j1/a10/video.mp4"]
    assert storage.list_keys("jobs/j1/a1/video.mp4") == ["jobs/j1/a1/video.mp4"]
    assert len(storage.list_keys()) == 5
    assert storage.delete_prefix("jobs/j1/a1") == 2  # not a10
    assert storage.list_keys("jobs") == ["jobs/j1/a10/video.mp4", "jobs/j10/a1/video.mp4"]
    assert storage.delete_prefix("jobs/j1/a10/video.mp4") == 1  # one object by its key
    assert storage.delete_prefix("jobs/j1/") == 0
    assert storage.list_keys() == ["assets/acc/asset_1.jpg", "jobs/j10/a1/video.mp4"]


@pytest.mark.parametrize("key", ["../escape.bin", "jobs/../../escape.bin", "/abs/key"])
def test_keys_cannot_escape_the_root(storage, tmp_path, key):
    with pytest.raises(ValueError):
        storage.put_file(key, _file(tmp_path, "e", b"e"), "application/octet-stream")


def test_large_file_streams_both_ways(storage, tmp_path):
    data = os.urandom(12 * MiB + 12345)
    storage.put_file("big/video.mp4", _file(tmp_path, "big.bin", data), "video/mp4")
    assert storage.size("big/video.mp4") == len(data)
    back = storage.get_file("big/video.mp4", tmp_path / "big.back")
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(data).digest()
    h = hashlib.sha256()
    biggest = 0
    for chunk in storage.open_range("big/video.mp4", chunk=256 * 1024):
        biggest = max(biggest, len(chunk))
        h.update(chunk)
    assert h.digest() == hashlib.sha256(data).digest() and biggest <= 256 * 1024


def test_presigned_url_serves_without_credentials(storage, tmp_path):
    storage.put_file("jobs/j/a1/video.mp4", _file(tmp_path, "v", b"0123456789"), "video/mp4")
    url = storage.presigned_url("jobs/j/a1/video.mp4", 60, filename="video.mp4",
                                content_type="video/mp4")
    if isinstance(storage, LocalStorage):
        assert url is None  # the API streams local files itself
        return
    r = httpx.get(url, headers={"Range": "bytes=2-5"})
    assert r.status_code == 206 and r.content == b"2345"
    assert r.headers["content-type"] == "video/mp4"
    assert 'filename="video.mp4"' in r.headers["content-disposition"]
    # (moto does not check signatures, so a forged URL is not tested here)


def test_interrupted_uploads_are_removed(storage, tmp_path):
    if isinstance(storage, LocalStorage):
        part = storage.root / "jobs" / "j" / ".video.mp4.4242.tmp"
        part.parent.mkdir(parents=True)
        part.write_bytes(b"partial")
        assert storage.list_keys() == []  # never listed as a stored object
        assert storage.remove_incomplete(older_than_s=3600) == 0  # too young to be dead
    else:  # (moto dates every multipart upload 2010: no "too young" check here)
        storage.client.create_multipart_upload(Bucket=storage.bucket,
                                               Key=storage._key("jobs/j/video.mp4"))
    assert storage.remove_incomplete(older_than_s=-1) == 1
    if isinstance(storage, LocalStorage):
        assert not part.exists()
    else:
        assert not storage.client.list_multipart_uploads(Bucket=storage.bucket).get("Uploads")


def test_multipart_upload_above_the_part_size(moto_server, tmp_path):
    storage = moto_server.storage(part_size=5 * MiB)
    storage.put_file("big.bin", _file(tmp_path, "big", os.urandom(12 * MiB)), "video/mp4")
    head = storage.client.head_object(Bucket=storage.bucket, Key="big.bin")
    assert head["ETag"].strip('"').endswith("-3")  # three parts
    assert head["ContentType"] == "video/mp4"


# Retention and reconcile run on top of the contract, so they hold for every backend.

@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'rf.db'}")
    database.upgrade()
    yield database
    database.dispose()


def _job(s, job_id, status, outputs=None, **kw):
    now = datetime.now(timezone.utc)
    s.add(Job(id=job_id, account_id="acc", mode="image_to_video", engine="local",
              status=status, outputs=outputs or {}, created_at=now, updated_at=now, **kw))


def test_retention_deletes_outputs_and_unused_inputs(storage, db, tmp_path):
    settings = make_settings(tmp_path, db.url)
    past = datetime.now(timezone.utc) - timedelta(days=1)
    src = _file(tmp_path, "f", b"f")
    with db.session() as s:
        s.add(Account(id="acc", name="acc", plan="starter", webhook_secret="x"))
        s.flush()
        _job(s, "job_old", "succeeded", {"video": {"key": "jobs/job_old/a1/video.mp4"}},
             expires_at=past, completed_at=past)
        _job(s, "job_new", "succeeded", {"video": {"key": "jobs/job_new/a1/video.mp4"}},
             expires_at=past + timedelta(days=14), completed_at=past)
        _job(s, "job_waiting", "queued", inputs={"image": "asset_kept"})
        for asset_id in ("asset_gone", "asset_kept", "asset_fresh"):
            s.add(Asset(id=asset_id, account_id="acc", kind="image", content_type="image/jpeg",
                        bytes=1, storage_key=f"assets/acc/{asset_id}.jpg", sha256="0",
                        expires_at=past if asset_id != "asset_fresh"
                        else past + timedelta(days=14)))
    for key in ("jobs/job_old/a1/video.mp4", "jobs/job_new/a1/video.mp4",
                "assets/acc/asset_gone.jpg", "assets/acc/asset_kept.jpg",
                "assets/acc/asset_fresh.jpg"):
        storage.put_file(key, src, "application/octet-stream")
    sweep_once(db, settings, storage, enqueue=lambda job_id: None)
    assert remove_expired_assets(db, storage) == 1
    assert storage.list_keys() == ["assets/acc/asset_fresh.jpg", "assets/acc/asset_kept.jpg",
                                   "jobs/job_new/a1/video.mp4"]
    with db.session() as s:
        assert s.get(Job, "job_old").purged_at is not None
        assert s.get(Asset, "asset_gone") is None and s.get(Asset, "asset_kept") is not None


def test_reconcile_removes_files_no_finished_job_owns(storage, db, tmp_path):
    ended = datetime.now(timezone.utc) - timedelta(seconds=30)
    src = _file(tmp_path, "f", b"f")
    with db.session() as s:
        s.add(Account(id="acc", name="acc", plan="starter", webhook_secret="x"))
        s.flush()
        _job(s, "job_ok", "succeeded", {"video": {"key": "jobs/job_ok/a2/video.mp4"},
                                        "poster": {"key": "jobs/job_ok/a2/poster.jpg"}},
             completed_at=ended)
        _job(s, "job_failed", "failed", completed_at=ended)
        _job(s, "job_running", "running")
    for key in ("jobs/job_ok/a1/video.mp4", "jobs/job_ok/a2/video.mp4",
                "jobs/job_ok/a2/poster.jpg", "jobs/job_ok/a3/video.mp4",
                "jobs/job_failed/a1/video.mp4", "jobs/job_running/a1/video.mp4"):
        storage.put_file(key, src, "application/octet-stream")
    reconciler = Reconciler(db, storage, delay_s=10)
    reconciler.watermark = ended - timedelta(seconds=1)
    assert reconciler.tick() == 3
    assert storage.list_keys() == ["jobs/job_ok/a2/poster.jpg", "jobs/job_ok/a2/video.mp4",
                                   "jobs/job_running/a1/video.mp4"]
    assert reconciler.tick() == 0  # each job is looked at once
