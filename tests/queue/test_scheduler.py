"""The database picks the next job: plan tier, then fairness between accounts, then age."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from reelforge.core import accounts, jobs
from reelforge.db.models import Job
from reelforge.db.session import Database
from reelforge.queue import scheduler
from reelforge.queue.broker import JobQueue, make_broker


@pytest.fixture
def db(settings):
    database = Database(settings.database_url)
    database.upgrade()
    yield database
    database.dispose()


def _account(db, settings, plan="unlimited") -> str:
    with db.session() as s:
        return accounts.create_account(s, settings, f"a{time.monotonic_ns()}", plan=plan,
                                       credits=10_000).id


def _submit(db, settings, account_id, n=1) -> list[str]:
    ids = []
    for _ in range(n):
        req = jobs.SubmitRequest(mode="image_to_video", engine="local", inputs={},
                                 options={}, cost=1)
        job, _ = jobs.submit(db, settings, account_id, req, enqueue=lambda j: None)
        ids.append(job.id)
    return ids


def _claim(db, tiers=scheduler.ALL_TIERS):
    job = scheduler.claim_next(db, "w", 30, tiers)
    return job.id if job else None


def test_higher_tiers_go_first(db, settings):
    standard = _submit(db, settings, _account(db, settings, "unlimited"))[0]
    priority = _submit(db, settings, _account(db, settings, "growth"))[0]
    dedicated = _submit(db, settings, _account(db, settings, "enterprise"))[0]
    assert [_claim(db), _claim(db), _claim(db), _claim(db)] == [dedicated, priority, standard,
                                                                None]


def test_one_accounts_flood_does_not_starve_another(db, settings):
    flood = _submit(db, settings, _account(db, settings), n=12)
    late = _submit(db, settings, _account(db, settings), n=2)
    order = [_claim(db) for _ in range(5)]
    # the flood's first job, then the late account's (0 running beats 1), then turns
    # by running count, the older job first on a tie
    assert order == [flood[0], late[0], flood[1], late[1], flood[2]]


def test_a_long_wait_moves_a_job_up(db, settings):
    old = _submit(db, settings, _account(db, settings, "unlimited"))[0]
    dedicated = _submit(db, settings, _account(db, settings, "enterprise"))[0]
    with db.session() as s:  # waited past 2 * AGING_S: competes with the dedicated tier
        s.execute(update(Job).where(Job.id == old).values(
            created_at=datetime.now(timezone.utc) - timedelta(seconds=2 * scheduler.AGING_S + 5)))
    assert [_claim(db), _claim(db)] == [old, dedicated]


def test_tier_pools_pass_the_wakeup_on(db, settings):
    standard = _submit(db, settings, _account(db, settings, "unlimited"))[0]
    dedicated_only = scheduler.tier_priorities(["dedicated"])
    assert _claim(db, dedicated_only) is None
    assert scheduler.waiting_outside(db, dedicated_only) == standard
    assert scheduler.priority_of(db, standard) == 2
    with pytest.raises(ValueError, match="unknown worker tier"):
        scheduler.tier_priorities(["gold"])


def test_racing_workers_claim_each_job_once(db, settings):
    ids = set(_submit(db, settings, _account(db, settings), n=30))
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        while (job := scheduler.claim_next(db, f"w{n}", 30)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claimed) == sorted(ids)


def test_messages_go_to_their_tiers_queue(settings):
    settings.broker_url = "memory://"
    queue = JobQueue(make_broker(settings), lambda job_id: None, priority_of=lambda j: 1)
    queue.enqueue("job_a", 0)
    queue.enqueue("job_b")  # looked up: priority
    queue.enqueue("job_c", 2)
    sizes = {name: q.qsize() for name, q in queue.broker.queues.items()
             if not name.endswith(".DQ")}
    assert sizes == {"jobs.dedicated": 1, "jobs.priority": 1, "jobs.standard": 1}
    assert queue.depth() == 3
