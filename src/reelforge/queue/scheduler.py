"""Which job a free worker takes next: the database decides, not the message.

A queue message only wakes a worker. The worker then claims the best queued job it
serves, ordered by

1. tier: the plan's queue (dedicated 0, priority 1, standard 2); a job that has waited
   ``AGING_S`` moves up a tier, and up another after twice that, so a flood in a
   higher tier cannot starve a lower one forever;
2. fairness: the account with the fewest jobs running right now goes first, so one
   account's flood cannot starve the others;
3. age: the oldest first (ids sort by creation time).

Claims are conditional updates (``leases.claim``), so workers racing for the same job
are harmless: one wins, the others try the next candidate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone

from sqlalchemy import case, func, select

from ..core import leases
from ..core.jobs import QUEUE_PRIORITY
from ..db.models import Job
from ..db.session import Database

AGING_S = 120.0  # a job waiting this long competes one tier higher
CANDIDATES = 8  # jobs fetched per pick; losing a race moves on to the next one
ALL_TIERS: tuple[int, ...] = tuple(sorted(QUEUE_PRIORITY.values()))
TIER_NAMES: dict[int, str] = {p: name for name, p in QUEUE_PRIORITY.items()}


def tier_priorities(names: Iterable[str]) -> tuple[int, ...]:
    """Plan queue names (``worker_tiers``) to priorities; refuses unknown names."""
    wanted = list(names) or list(QUEUE_PRIORITY)
    unknown = [n for n in wanted if n not in QUEUE_PRIORITY]
    if unknown:
        raise ValueError(f"unknown worker tier(s) {unknown}: use "
                         f"{', '.join(QUEUE_PRIORITY)}")
    return tuple(sorted({QUEUE_PRIORITY[n] for n in wanted}))


def _candidates(db: Database, tiers: Sequence[int], now: datetime) -> list[str]:
    running = (select(Job.account_id, func.count().label("n"))
               .where(Job.status == "running").group_by(Job.account_id).subquery())
    tier = case((Job.created_at < now - timedelta(seconds=2 * AGING_S), Job.priority - 2),
                (Job.created_at < now - timedelta(seconds=AGING_S), Job.priority - 1),
                else_=Job.priority)
    stmt = (select(Job.id).outerjoin(running, running.c.account_id == Job.account_id)
            .where(Job.status == "queued", Job.priority.in_(tiers))
            .order_by(tier, func.coalesce(running.c.n, 0), Job.id).limit(CANDIDATES))
    with db.session() as s:
        return list(s.scalars(stmt))


def claim_next(db: Database, worker_id: str, lease_s: float,
               tiers: Sequence[int] = ALL_TIERS) -> Job | None:
    """Claim the best queued job in ``tiers``; None when there is none left."""
    for _ in range(3):  # every candidate lost to other workers: look again
        candidates = _candidates(db, tiers, datetime.now(timezone.utc))
        if not candidates:
            return None
        for job_id in candidates:
            job = leases.claim(db, job_id, worker_id, lease_s)
            if job is not None:
                return job
    return None


def waiting_outside(db: Database, tiers: Sequence[int]) -> str | None:
    """A queued job in a tier these workers do not serve (its message must move on)."""
    with db.session() as s:
        return s.scalar(select(Job.id).where(Job.status == "queued",
                                             Job.priority.not_in(tiers))
                        .order_by(Job.priority, Job.id).limit(1))


def priority_of(db: Database, job_id: str) -> int:
    """The job's tier, for routing its message; standard when it cannot be read."""
    with db.session() as s:
        found = s.scalar(select(Job.priority).where(Job.id == job_id))
    return int(found) if found is not None else QUEUE_PRIORITY["standard"]
