"""Leases and fencing: claims, late heartbeats and finishes, the sweeper."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from reelforge.core import accounts, jobs, leases
from reelforge.db.models import Account, Job, LedgerEntry
from reelforge.db.session import Database
from reelforge.errors import JobCancelled, LeaseLost, MediaError, EngineError


@pytest.fixture
def db(settings):
    database = Database(settings.database_url)
    database.upgrade()
    yield database
    database.dispose()


def _queued(db, settings, cost=10) -> tuple[str, str]:
    with db.session() as s:
        acc = accounts.create_account(s, settings, f"a{time.monotonic_ns()}", plan="unlimited",
                                      credits=100)
    req = jobs.SubmitRequest(mode="image_to_video", engine="local", inputs={}, options={},
                             cost=cost)
    job, _ = jobs.submit(db, settings, acc.id, req, enqueue=lambda j: None)
    return acc.id, job.id


def _expire(db, job_id) -> None:
    with db.session() as s:
        s.execute(update(Job).where(Job.id == job_id).values(
            lease_until=datetime.now(timezone.utc) - timedelta(seconds=1)))


def _balance(db, account_id) -> tuple[int, int]:
    with db.session() as s:
        acc = s.get(Account, account_id)
        return acc.balance, acc.held


def test_only_one_claim_wins(db, settings):
    _, job_id = _queued(db, settings)
    first = leases.claim(db, job_id, "w1", 30)
    assert first is not None and first.attempt == 1 and first.status == "running"
    assert leases.claim(db, job_id, "w2", 30) is None


def test_paused_worker_is_fenced_after_its_lease_expires(db, settings):
    account_id, job_id = _queued(db, settings)
    stale = leases.claim(db, job_id, "paused", 30)
    _expire(db, job_id)
    assert leases.sweep(db, settings) == [job_id]
    fresh = leases.claim(db, job_id, "fresh", 30)
    assert fresh.attempt == 2
    with pytest.raises(LeaseLost):  # the paused worker wakes up: its heartbeat is refused
        leases.heartbeat(db, job_id, stale.attempt, 30, "rendering", 50)
    assert leases.complete(db, settings, job_id, stale.attempt, {}, 1.0) is False
    assert leases.complete(db, settings, job_id, fresh.attempt, {"video": {}}, 1.0) is True
    assert _balance(db, account_id) == (90, 0)


def test_sweeper_fails_and_refunds_past_max_attempts(db, settings):
    account_id, job_id = _queued(db, settings)
    for _ in range(settings.max_attempts):
        assert leases.claim(db, job_id, "crashy", 30) is not None
        _expire(db, job_id)
        leases.sweep(db, settings)
    with db.session() as s:
        job = s.get(Job, job_id)
        kinds = sorted(s.scalars(select(LedgerEntry.kind).where(LedgerEntry.job_id == job_id)))
    assert job.status == "failed" and job.error["code"] == "attempts_exhausted"
    assert job.error["fix"]
    assert kinds == ["release", "reserve"]
    assert _balance(db, account_id) == (100, 0)


def test_retryable_failures_requeue_then_fail(db, settings):
    account_id, job_id = _queued(db, settings)
    job = leases.claim(db, job_id, "w", 30)
    assert leases.fail(db, settings, job_id, job.attempt, EngineError("provider hiccup")) == "queued"
    job = leases.claim(db, job_id, "w", 30)
    assert leases.fail(db, settings, job_id, job.attempt, MediaError("bad input")) == "failed"
    assert _balance(db, account_id) == (100, 0)


def test_cancelled_running_job_stops_at_next_heartbeat(db, settings):
    _, job_id = _queued(db, settings)
    job = leases.claim(db, job_id, "w", 30)
    with db.session() as s:
        jobs.cancel(s, settings, s.get(Job, job_id), allow_running=True)
    with pytest.raises(JobCancelled):
        leases.heartbeat(db, job_id, job.attempt, 30, "rendering", 10)


def test_stale_queued_jobs_are_rung_again(db, settings):
    _, job_id = _queued(db, settings)
    with db.session() as s:
        s.execute(update(Job).where(Job.id == job_id).values(
            updated_at=datetime.now(timezone.utc) - timedelta(minutes=5)))
    assert leases.sweep(db, settings) == [job_id]
    assert leases.sweep(db, settings) == []  # rung once, not on every sweep
