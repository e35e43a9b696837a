"""Jobs as a user sees them: submit, read, list, cancel, delete outputs.

Submission is one transaction: the account row is locked, the plan's concurrent-job
cap is checked against the jobs table, credits are reserved and the job row is
written. Only after the commit is the queue rung (``enqueue``), so a worker never
sees a job that might still roll back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..config import Settings
from ..db.models import Account, Job
from ..db.session import Database
from ..db.models import IdempotencyRecord
from ..errors import (
    ConcurrencyLimit, Conflict, IdempotencyInFlight, IdempotencyMismatch, Invalid, NotFound,
)
from . import credits, webhooks
from .ids import new_id
from .signing import signed_query

ACTIVE = ("queued", "running")
TERMINAL = ("succeeded", "failed", "cancelled")
QUEUE_PRIORITY = {"dedicated": 0, "priority": 1, "standard": 2}


@dataclass(frozen=True)
class SubmitRequest:
    mode: str
    engine: str
    inputs: dict[str, Any]  # name -> asset id (or list of ids for "images")
    options: dict[str, Any]
    cost: int
    webhook_url: str | None = None
    idempotency_key: str | None = None
    fingerprint: dict[str, Any] = field(default_factory=dict)  # what the key must match
    dialect: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    key_id: str | None = None
    max_active_per_key: int | None = None


def request_hash(fingerprint: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()


def submit(db: Database, settings: Settings, account_id: str, req: SubmitRequest,
           enqueue: Callable[[Job], None]) -> tuple[Job, bool]:
    """Create the job (or return the one an Idempotency-Key already made).

    Returns ``(job, created)``.
    """
    if req.idempotency_key:
        existing = _claim_idempotency(db, account_id, req)
        if existing is not None:
            return existing, False
    try:
        job = _create(db, settings, account_id, req)
    except BaseException:
        if req.idempotency_key:  # let the client retry the same key after a refusal
            with db.session() as s:
                s.query(IdempotencyRecord).filter_by(
                    account_id=account_id, key=req.idempotency_key, job_id=None).delete()
        raise
    enqueue(job)
    return job, True


def _claim_idempotency(db: Database, account_id: str, req: SubmitRequest) -> Job | None:
    digest = request_hash(req.fingerprint)
    try:
        with db.session() as s:
            s.add(IdempotencyRecord(account_id=account_id, key=req.idempotency_key,
                                    request_hash=digest, job_id=None))
        return None
    except IntegrityError:
        pass
    with db.session() as s:
        record = s.get(IdempotencyRecord, (account_id, req.idempotency_key))
        if record is None:  # the first request failed and released the key meanwhile
            raise IdempotencyInFlight("A request with this Idempotency-Key just failed.",
                                      fix="Retry the request.")
        if record.request_hash != digest:
            raise IdempotencyMismatch(
                "This Idempotency-Key was already used with a different request body.")
        if record.job_id is None:
            raise IdempotencyInFlight("A request with this Idempotency-Key is still in flight.")
        return s.get(Job, record.job_id)


def _create(db: Database, settings: Settings, account_id: str, req: SubmitRequest) -> Job:
    now = datetime.now(timezone.utc)
    with db.session() as s:
        account = db.lock(s, Account, account_id)
        if account is None:
            raise NotFound("The account no longer exists.")
        plan = settings.plan(account.plan)
        active = s.scalar(select(func.count()).select_from(Job).where(
            Job.account_id == account.id, Job.status.in_(ACTIVE))) or 0
        if active >= plan.concurrent_jobs:
            raise ConcurrencyLimit(
                f"The {account.plan} plan allows {plan.concurrent_jobs} concurrent jobs and "
                f"{active} are queued or running.", limit=plan.concurrent_jobs)
        if req.max_active_per_key is not None and req.key_id:
            mine = s.scalar(select(func.count()).select_from(Job).where(
                Job.key_id == req.key_id, Job.status.in_(ACTIVE))) or 0
            if mine >= req.max_active_per_key:
                raise ConcurrencyLimit(
                    f"This API key already has {mine} active job(s); the limit is "
                    f"{req.max_active_per_key}.", code="key_busy",
                    fix="Wait for the active job to finish or cancel it, then submit again.")
        job = Job(id=new_id("job"), account_id=account.id, key_id=req.key_id, mode=req.mode,
                  engine=req.engine, status="queued", stage="queued", progress=0.0,
                  priority=QUEUE_PRIORITY.get(plan.queue, 2), inputs=req.inputs,
                  options=req.options, outputs={}, cost=req.cost, webhook_url=req.webhook_url,
                  dialect=req.dialect, meta=req.meta, request_id=req.request_id,
                  max_attempts=settings.max_attempts, created_at=now, updated_at=now)
        s.add(job)
        s.flush()
        credits.reserve(s, account, job.id, req.cost)
        if req.idempotency_key:
            s.execute(update(IdempotencyRecord).where(
                IdempotencyRecord.account_id == account.id,
                IdempotencyRecord.key == req.idempotency_key).values(job_id=job.id))
        return job


def get_job(session: Session, account: Account, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None or (job.account_id != account.id and not account.is_admin):
        raise NotFound(f"No job {job_id!r} on this account.",
                       fix="List your jobs with GET /v1/jobs.")
    return job


def list_jobs(session: Session, account: Account, *, limit: int = 20, cursor: str | None = None,
              status: str | None = None, dialect: str | None = None,
              ascending: bool = False, include_purged: bool = True,
              ) -> tuple[list[Job], str | None]:
    """Newest first (oldest first with ``ascending``). Ids sort by creation time, so the
    cursor is the last id seen. ``dialect`` keeps the jobs one dialect created;
    ``include_purged=False`` leaves out jobs whose outputs were deleted."""
    if not 1 <= limit <= 100:
        raise Invalid("limit must be between 1 and 100.", fix="Pass a limit from 1 to 100.")
    stmt = select(Job).where(Job.account_id == account.id)
    if status:
        if status not in ACTIVE + TERMINAL:
            raise Invalid(f"Unknown status {status!r}.",
                          fix=f"Use one of: {', '.join(ACTIVE + TERMINAL)}.")
        stmt = stmt.where(Job.status == status)
    if dialect is not None:
        stmt = stmt.where(Job.dialect == dialect)
    if not include_purged:
        stmt = stmt.where(Job.purged_at.is_(None))
    if cursor:
        stmt = stmt.where(Job.id > cursor if ascending else Job.id < cursor)
    order = Job.id.asc() if ascending else Job.id.desc()
    rows = list(session.scalars(stmt.order_by(order).limit(limit + 1)))
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_cursor


def cancel(session: Session, settings: Settings, job: Job, *, allow_running: bool = False) -> Job:
    """Cancel a queued job (or a running one, for dialects whose API allows it)."""
    allowed = ACTIVE if allow_running else ("queued",)
    if job.status not in allowed:
        raise Conflict(f"Job {job.id} is {job.status} and can no longer be cancelled.",
                       code="not_cancellable",
                       fix="Only queued jobs can be cancelled; delete it to remove its outputs.")
    return finish_terminal(session, settings, job, "cancelled", allowed=allowed)


def finish_terminal(session: Session, settings: Settings, job: Job, status: str, *,
                    allowed: tuple[str, ...] = ACTIVE, attempt: int | None = None,
                    error: dict[str, Any] | None = None, outputs: dict[str, Any] | None = None,
                    render_seconds: float | None = None) -> Job:
    """Make a job terminal exactly once: status, credits and the webhook outbox together."""
    now = datetime.now(timezone.utc)
    conds = [Job.id == job.id, Job.status.in_(allowed)]
    if attempt is not None:
        conds.append(Job.attempt == attempt)
    values: dict[str, Any] = {"status": status, "stage": status, "updated_at": now,
                              "completed_at": now, "lease_until": None, "error": error,
                              "expires_at": now + timedelta(days=settings.retention_days)}
    if status == "succeeded":
        values.update(progress=100.0, outputs=outputs or {}, render_seconds=render_seconds)
    result = session.execute(update(Job).where(and_(*conds)).values(**values))
    if result.rowcount != 1:
        session.refresh(job)
        raise Conflict(f"Job {job.id} is already {job.status}.", code="already_final",
                       fix="Nothing to do: the job has already ended.")
    session.refresh(job)
    if status == "succeeded":
        credits.capture(session, job)
    else:
        credits.release(session, job)
    webhooks.record_event(session, job, settings)
    return job


def queue_position(session: Session, job: Job) -> int | None:
    """How many queued jobs will be taken before this one (0 = next)."""
    if job.status != "queued":
        return None
    ahead = session.scalar(select(func.count()).select_from(Job).where(
        Job.status == "queued",
        or_(Job.priority < job.priority,
            and_(Job.priority == job.priority, Job.id < job.id)))) or 0
    return int(ahead)


def artifact_url(settings: Settings, job_id: str, name: str) -> str:
    path = f"/v1/files/{job_id}/{name}"
    return f"{settings.public_base_url.rstrip('/')}{path}?" + signed_query(
        settings.secret_key, path, settings.download_url_ttl_s)


def eta_seconds(job: Job) -> float | None:
    """Seconds until a running job ends, extrapolated from its progress so far."""
    if job.status != "running" or not job.started_at or job.progress < 5:
        return None
    elapsed = (datetime.now(timezone.utc) - job.started_at).total_seconds()
    return round(max(0.0, elapsed * (100 - job.progress) / job.progress), 1)


def job_view(job: Job, settings: Settings, position: int | None = None) -> dict[str, Any]:
    """The native JSON shape of a job."""
    iso = lambda d: d.isoformat().replace("+00:00", "Z") if d else None  # noqa: E731
    outputs = {}
    if job.status == "succeeded" and job.purged_at is None:
        for name, facts in (job.outputs or {}).items():
            outputs[name] = {**{k: v for k, v in facts.items() if k != "key"},
                             "url": artifact_url(settings, job.id, name),
                             "api_url": f"{settings.public_base_url.rstrip('/')}"
                                        f"/v1/jobs/{job.id}/artifacts/{name}"}
    return {
        "id": job.id, "object": "job", "mode": job.mode, "engine": job.engine,
        "status": job.status, "stage": job.stage, "progress": round(job.progress, 1),
        "queue_position": position, "eta_seconds": eta_seconds(job),
        "created_at": iso(job.created_at), "started_at": iso(job.started_at),
        "completed_at": iso(job.completed_at), "expires_at": iso(job.expires_at),
        "inputs": job.inputs, "options": job.options, "outputs": outputs,
        "cost": job.cost, "attempt": job.attempt, "error": job.error,
        "webhook_url": job.webhook_url, "expired": job.purged_at is not None,
    }
