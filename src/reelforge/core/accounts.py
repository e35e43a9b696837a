"""Accounts and their plans."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..config import Settings
from ..db.models import Account, Job, LedgerEntry
from ..errors import Conflict, Invalid, NotFound
from .ids import new_id


def new_webhook_secret() -> str:
    """Standard Webhooks form: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create_account(session: Session, settings: Settings, name: str, *, plan: str | None = None,
                   credits: int | None = None, is_admin: bool = False) -> Account:
    plan = plan or settings.default_plan
    if plan not in settings.plans:
        raise Invalid(f"Unknown plan {plan!r}.", fix=f"Use one of: {', '.join(settings.plans)}.")
    if session.scalar(select(Account.id).where(Account.name == name)):
        raise Conflict(f"An account named {name!r} already exists.",
                       fix="Pick another name, or create a key for the existing account.")
    grant = settings.plans[plan].monthly_credits if credits is None else credits
    if grant < 0:
        raise Invalid("credits must be zero or more.", fix="Pass a non-negative number.")
    account = Account(id=new_id("acct"), name=name, plan=plan, balance=grant, held=0,
                      is_admin=is_admin, webhook_secret=new_webhook_secret())
    session.add(account)
    session.flush()
    if grant:
        session.add(LedgerEntry(account_id=account.id, kind="grant", amount=grant,
                                note=f"initial grant ({plan})"))
    return account


def get_account(session: Session, account_id: str) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(f"Account {account_id!r} does not exist.")
    return account


def find_account(session: Session, name_or_id: str) -> Account:
    account = session.scalar(select(Account).where(
        (Account.name == name_or_id) | (Account.id == name_or_id)))
    if account is None:
        raise NotFound(f"No account named {name_or_id!r}.",
                       fix="List accounts with `reelforge accounts list`, or create one with "
                           "`reelforge accounts create NAME`.")
    return account


def grant_credits(session: Session, account: Account, amount: int, note: str = "") -> None:
    if amount <= 0:
        raise Invalid("amount must be positive.", fix="Pass a positive number of credits.")
    account.balance += amount
    session.add(LedgerEntry(account_id=account.id, kind="grant", amount=amount, note=note))


def rotate_webhook_secret(session: Session, account: Account) -> str:
    account.webhook_secret = new_webhook_secret()
    return account.webhook_secret


def usage(session: Session, account: Account) -> dict[str, Any]:
    """Jobs by status and credits spent this calendar month."""
    by_status = dict(session.execute(
        select(Job.status, func.count()).where(Job.account_id == account.id)
        .group_by(Job.status)).all())
    month_start = datetime.now(timezone.utc).replace(day=1, hour=0, minute=0, second=0,
                                                     microsecond=0)
    spent = session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.account_id == account.id, LedgerEntry.kind == "capture",
        LedgerEntry.created_at >= month_start)) or 0
    return {"jobs": {k: int(v) for k, v in by_status.items()},
            "credits_spent_this_month": int(spent)}
