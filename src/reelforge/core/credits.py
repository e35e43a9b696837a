"""Credits: reserve at submit, capture on success, release on failure or cancel.

Each movement is one ledger row, unique per (job, kind), written in the same
transaction as the balance change, so a retried or duplicated call cannot move
credits twice: the second insert fails and the whole transaction rolls back.

    balance = grants - reserves + releases
    held    = reserves - captures - releases
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from ..config import Settings
from ..db.models import Account, Job, LedgerEntry
from ..errors import InsufficientCredits


def estimate(settings: Settings, mode: str, output_seconds: float, options: dict[str, Any]) -> int:
    costs = settings.costs
    base = costs.base.get(mode, 1)
    factor = costs.quality_factor.get(str(options.get("quality") or "720p"), 1.0)
    return int(math.ceil((base + costs.per_second * output_seconds) * factor))


def reserve(session: Session, account: Account, job_id: str, amount: int) -> None:
    """Move ``amount`` from balance to held, or raise 402. Atomic on every backend."""
    if amount <= 0:
        return
    result = session.execute(
        update(Account)
        .where(Account.id == account.id, Account.balance >= amount)
        .values(balance=Account.balance - amount, held=Account.held + amount))
    if result.rowcount != 1:
        session.refresh(account)
        raise InsufficientCredits(
            f"This job costs {amount} credits but the account has {account.balance}.",
            credits_remaining=account.balance, plan=account.plan)
    session.add(LedgerEntry(account_id=account.id, job_id=job_id, kind="reserve", amount=amount))
    session.flush()


def capture(session: Session, job: Job) -> None:
    """The job succeeded: the held credits are spent."""
    _settle(session, job, "capture", balance_delta=0)


def release(session: Session, job: Job) -> None:
    """The job failed or was cancelled: the held credits return to the balance."""
    _settle(session, job, "release", balance_delta=job.cost)


def _settle(session: Session, job: Job, kind: str, balance_delta: int) -> None:
    if job.cost <= 0:
        return
    session.add(LedgerEntry(account_id=job.account_id, job_id=job.id, kind=kind, amount=job.cost))
    session.flush()  # the unique (job_id, kind) constraint fires here on a second settle
    session.execute(update(Account).where(Account.id == job.account_id).values(
        balance=Account.balance + balance_delta, held=Account.held - job.cost))
