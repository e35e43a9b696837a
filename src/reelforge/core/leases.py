"""Jobs as a worker sees them: claim with a lease, renew it, finish by attempt.

The attempt number is a fencing token. A worker that was paused past its lease
(or whose job was cancelled) finds its heartbeat and its finish refused, because
they name an attempt that no longer owns the row.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, or_, select, update

from ..config import Settings
from ..db.models import Job
from ..db.session import Database
from ..errors import Conflict, JobCancelled, JobError, LeaseLost
from .jobs import finish_terminal

log = logging.getLogger("reelforge.leases")


def claim(db: Database, job_id: str, worker_id: str, lease_s: float) -> Job | None:
    """Take a queued job. Returns the job with its new attempt, or None if not ours."""
    now = datetime.now(timezone.utc)
    with db.session() as s:
        job = s.get(Job, job_id)
        if job is None or job.status != "queued":
            return None
        won = s.execute(update(Job).where(Job.id == job_id, Job.status == "queued",
                                          Job.attempt == job.attempt).values(
            status="running", stage="starting", attempt=Job.attempt + 1,
            lease_until=now + timedelta(seconds=lease_s), worker_id=worker_id,
            started_at=job.started_at or now, updated_at=now))
        if won.rowcount != 1:
            return None
        s.refresh(job)
        return job


def heartbeat(db: Database, job_id: str, attempt: int, lease_s: float,
              stage: str | None = None, progress: float | None = None) -> None:
    """Renew the lease (and record progress). Raises if this attempt must stop."""
    now = datetime.now(timezone.utc)
    values: dict[str, Any] = {"lease_until": now + timedelta(seconds=lease_s), "updated_at": now}
    if stage is not None:
        values["stage"] = stage
    if progress is not None:
        values["progress"] = max(0.0, min(99.9, progress))
    with db.session() as s:
        won = s.execute(update(Job).where(Job.id == job_id, Job.attempt == attempt,
                                          Job.status == "running").values(**values))
        if won.rowcount == 1:
            return
        job = s.get(Job, job_id)
    if job is not None and job.status == "cancelled":
        raise JobCancelled(f"Job {job_id} was cancelled.")
    raise LeaseLost(f"Job {job_id} attempt {attempt} no longer holds the lease.")


def complete(db: Database, settings: Settings, job_id: str, attempt: int,
             outputs: dict[str, Any], render_seconds: float) -> bool:
    """Succeed the job if ``attempt`` still owns it: outputs, capture, webhook together."""
    with db.session() as s:
        job = s.get(Job, job_id)
        try:
            finish_terminal(s, settings, job, "succeeded", allowed=("running",),
                            attempt=attempt, outputs=outputs, render_seconds=render_seconds)
        except Conflict:
            log.warning("job %s attempt %d finished late; its result is discarded",
                        job_id, attempt)
            return False
    return True


def fail(db: Database, settings: Settings, job_id: str, attempt: int, error: JobError) -> str:
    """Retry a retryable failure while attempts remain; otherwise fail and release.

    Returns the job's new status ("queued" or "failed"), or "" when the attempt had
    already lost the job.
    """
    with db.session() as s:
        job = s.get(Job, job_id)
        if job is None or job.status != "running" or job.attempt != attempt:
            return ""
        if error.retryable and job.attempt < job.max_attempts:
            s.execute(update(Job).where(Job.id == job_id, Job.attempt == attempt).values(
                status="queued", stage="queued", lease_until=None,
                updated_at=datetime.now(timezone.utc)))
            return "queued"
        finish_terminal(s, settings, job, "failed", allowed=("running",), attempt=attempt,
                        error=error.to_dict())
        return "failed"


def sweep(db: Database, settings: Settings) -> list[str]:
    """Requeue jobs whose lease expired; fail those out of attempts.

    Also returns queued jobs that nobody has touched for a while (their queue message
    may have been lost, e.g. in a broker restart), so the caller rings the queue again.
    Duplicate messages are harmless: only one claim can win.
    """
    now = datetime.now(timezone.utc)
    stale_queued = now - timedelta(seconds=max(settings.lease_seconds, 10))
    requeue: list[str] = []
    with db.session() as s:
        expired = s.scalars(select(Job).where(Job.status == "running",
                                              Job.lease_until < now)).all()
        for job in expired:
            if job.attempt >= job.max_attempts:
                err = {"code": "attempts_exhausted",
                       "message": f"The job's worker stopped {job.attempt} times before "
                                  "finishing.",
                       "fix": "Submit the job again; if it keeps failing, the input may be "
                              "too large for the workers' time limit."}
                try:
                    finish_terminal(s, settings, job, "failed", allowed=("running",),
                                    attempt=job.attempt, error=err)
                except Conflict:
                    pass
                continue
            won = s.execute(update(Job).where(Job.id == job.id, Job.attempt == job.attempt,
                                              Job.status == "running").values(
                status="queued", stage="queued", lease_until=None, updated_at=now))
            if won.rowcount == 1:
                log.warning("job %s: lease of attempt %d expired; requeued", job.id, job.attempt)
                requeue.append(job.id)
        lost = s.scalars(select(Job.id).where(Job.status == "queued",
                                              Job.updated_at < stale_queued)).all()
        if lost:
            s.execute(update(Job).where(Job.id.in_(lost), Job.status == "queued")
                      .values(updated_at=now))
        requeue.extend(lost)
    return requeue


def queued_ids(db: Database) -> list[str]:
    """Every queued job, oldest first: rung again when a process starts."""
    with db.session() as s:
        return list(s.scalars(select(Job.id).where(Job.status == "queued")
                              .order_by(Job.priority, Job.id)))


def expired_outputs(db: Database) -> list[Job]:
    now = datetime.now(timezone.utc)
    with db.session() as s:
        return list(s.scalars(select(Job).where(
            and_(Job.expires_at < now, Job.purged_at.is_(None),
                 or_(Job.status == "succeeded", Job.status == "failed")))))


def mark_purged(db: Database, job_id: str) -> None:
    with db.session() as s:
        s.execute(update(Job).where(Job.id == job_id).values(
            purged_at=datetime.now(timezone.utc)))
