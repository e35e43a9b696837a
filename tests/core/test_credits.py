"""Credits: exactly-once reserve/capture/release, under concurrency, on both databases."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from reelforge.core import accounts, credits, jobs
from reelforge.db.models import Account, Job, LedgerEntry
from reelforge.db.session import Database
from reelforge.errors import ConcurrencyLimit, Conflict, InsufficientCredits

from ..conftest import make_settings


def _submit(db, settings, account_id, cost=10, key=None):
    req = jobs.SubmitRequest(mode="image_to_video", engine="local", inputs={}, options={},
                             cost=cost, idempotency_key=key, fingerprint={"k": key})
    return jobs.submit(db, settings, account_id, req, enqueue=lambda job: None)


def _ledger_matches(db: Database, account_id: str) -> None:
    with db.session() as s:
        acc = s.get(Account, account_id)
        sums = dict(s.execute(select(LedgerEntry.kind, func.sum(LedgerEntry.amount))
                              .where(LedgerEntry.account_id == account_id)
                              .group_by(LedgerEntry.kind)).all())
    g, r = sums.get("grant", 0), sums.get("reserve", 0)
    c, rel = sums.get("capture", 0), sums.get("release", 0)
    assert acc.balance == g - r + rel
    assert acc.held == r - c - rel
    assert acc.balance >= 0 and acc.held >= 0


@pytest.fixture
def db(settings) -> Database:
    database = Database(settings.database_url)
    database.upgrade()
    yield database
    database.dispose()


def test_parallel_submits_reserve_exactly_what_the_balance_covers(db, settings):
    k = 7
    with db.session() as s:
        acc = accounts.create_account(s, settings, "racer", plan="unlimited", credits=10 * k + 5)
    results: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            _submit(db, settings, acc.id)
            outcome = "ok"
        except InsufficientCredits:
            outcome = "402"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=one) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == k
    assert results.count("402") == 100 - k
    with db.session() as s:
        acc2 = s.get(Account, acc.id)
        assert acc2.balance == 5 and acc2.held == 10 * k
    _ledger_matches(db, acc.id)


def test_capture_and_release_happen_once(db, settings):
    with db.session() as s:
        acc = accounts.create_account(s, settings, "once", plan="unlimited", credits=100)
    ok, _ = _submit(db, settings, acc.id)
    cancel, _ = _submit(db, settings, acc.id)
    with db.session() as s:
        jobs.finish_terminal(s, settings, s.get(Job, ok.id), "succeeded")
    with pytest.raises(Conflict), db.session() as s:
        jobs.finish_terminal(s, settings, s.get(Job, ok.id), "failed")
    with db.session() as s:
        jobs.cancel(s, settings, s.get(Job, cancel.id))
    with pytest.raises(Conflict), db.session() as s:
        jobs.cancel(s, settings, s.get(Job, cancel.id))
    with db.session() as s:
        assert s.get(Account, acc.id).balance == 90  # one capture, one release
        kinds = sorted(s.scalars(select(LedgerEntry.kind).where(
            LedgerEntry.job_id.in_([ok.id, cancel.id]))))
    assert kinds == ["capture", "release", "reserve", "reserve"]
    _ledger_matches(db, acc.id)


def test_a_second_settle_of_the_same_kind_is_refused_by_the_ledger(db, settings):
    with db.session() as s:
        acc = accounts.create_account(s, settings, "dup", plan="unlimited", credits=50)
    job, _ = _submit(db, settings, acc.id)
    with db.session() as s:
        credits.capture(s, s.get(Job, job.id))
    from sqlalchemy.exc import IntegrityError
    with pytest.raises(IntegrityError), db.session() as s:
        credits.capture(s, s.get(Job, job.id))
    _ledger_matches(db, acc.id)


def test_concurrency_cap_is_enforced_and_named(db, settings):
    with db.session() as s:
        acc = accounts.create_account(s, settings, "capped", plan="starter", credits=1000)
    _submit(db, settings, acc.id)
    _submit(db, settings, acc.id)
    with pytest.raises(ConcurrencyLimit) as err:
        _submit(db, settings, acc.id)
    assert "2 concurrent jobs" in err.value.message


def test_insufficient_credits_is_402_with_fix(db, settings):
    with db.session() as s:
        acc = accounts.create_account(s, settings, "poor", plan="starter", credits=3)
    with pytest.raises(InsufficientCredits) as err:
        _submit(db, settings, acc.id, cost=10)
    assert err.value.status == 402 and err.value.fix
    _ledger_matches(db, acc.id)
