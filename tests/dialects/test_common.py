"""The dialects' shared pieces: id mappings, sessions, and the core listing options
they use (on SQLite and PostgreSQL)."""

from __future__ import annotations

import time
import uuid

from reelforge.api.dialects import common
from reelforge.core import accounts, jobs, sessions
from reelforge.db.models import Job
from reelforge.runtime import Runtime

from ..conftest import make_settings


def test_job_ids_map_to_uuids_and_prefixes_and_back():
    from reelforge.core.ids import new_id

    for _ in range(200):
        job_id = new_id("job")
        assert common.job_from_uuid(common.job_uuid(job_id)) == job_id
        assert common.job_from_prefixed(f"task_{common.job_suffix(job_id)}", "task_") == job_id
        uuid.UUID(common.job_uuid(job_id))
    assert common.job_from_uuid("not a uuid") is None
    assert common.job_from_prefixed("task_short", "task_") is None
    assert common.job_from_prefixed("video_" + "i" * 26, "video_") is None  # not base32
    # any UUID decodes to a well-formed id (that then simply is not found)
    assert common.job_from_uuid(str(uuid.uuid4())).startswith("job_")


def test_passwords_and_session_tokens(tmp_path):
    hashed = sessions.hash_password("correct horse")
    assert hashed.startswith("scrypt$") and "correct" not in hashed
    assert sessions.verify_password("correct horse", hashed)
    assert not sessions.verify_password("wrong horse", hashed)
    assert not sessions.verify_password("x", "garbage")


def test_dialect_listing_order_and_purged(tmp_path, db_url):
    settings = make_settings(tmp_path, db_url)
    rt = Runtime.build(settings)
    rt.db.upgrade()
    try:
        with rt.db.session() as s:
            account = accounts.create_account(s, settings, "lister", credits=0, plan="enterprise")
            account.password_hash = sessions.hash_password("correct horse")
        made = []
        for dialect in ("openai", "kie", "openai", "openai"):
            job, _ = jobs.submit(rt.db, settings, account.id, jobs.SubmitRequest(
                mode="image_to_video", engine="local", inputs={}, options={}, cost=0,
                dialect=dialect, meta={"n": len(made)}), enqueue=lambda job: None)
            made.append(job.id)
            time.sleep(0.002)
        ours = [made[0], made[2], made[3]]
        with rt.db.session() as s:
            rows, cursor = jobs.list_jobs(s, account, limit=2, dialect="openai")
            assert [r.id for r in rows] == ours[::-1][:2] and cursor == ours[1]
            rows, cursor = jobs.list_jobs(s, account, limit=2, dialect="openai", ascending=True)
            assert [r.id for r in rows] == ours[:2] and cursor == ours[1]
            rows, _ = jobs.list_jobs(s, account, cursor=cursor, dialect="openai", ascending=True)
            assert [r.id for r in rows] == [ours[2]]
        from reelforge.core import leases

        leases.mark_purged(rt.db, ours[0])
        updated = common.update_meta(rt, ours[0], deleted=True)
        assert updated.meta == {"n": 0, "deleted": True}
        with rt.db.session() as s:
            assert s.get(Job, ours[0]).meta["deleted"] is True
            rows, _ = jobs.list_jobs(s, account, dialect="openai", include_purged=False)
            assert [r.id for r in rows] == ours[1:][::-1]
            token = sessions.make_token(settings, s.get(type(account), account.id))
            assert sessions.account_for_token(s, settings, token).id == account.id
            assert sessions.account_for_token(s, settings, token + "0") is None
            assert sessions.account_for_token(s, settings, token, now=time.time() + 10**8) is None
            # a new password ends the sessions made with the old one
            s.get(type(account), account.id).password_hash = sessions.hash_password("new one!")
            s.flush()
            assert sessions.account_for_token(s, settings, token) is None
    finally:
        rt.stop()
