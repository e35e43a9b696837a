"""API keys: ``rf_live_<id>_<secret>``, 256-bit secret, shown once, stored as SHA-256.

A key is looked up by the SHA-256 of the whole string presented, so keys can be minted
in the formats the dialects' vendors document (``KEY_STYLES``): Dockora's ``dk_…``,
Clipora's ``ck_live_…`` and Qamera's ``mk_live_<id>.<secret>``. Every style works on
every API the server speaks.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..db.models import Account, ApiKey
from ..errors import Conflict, Invalid, NotFound, Unauthorized

MAX_ACTIVE_KEYS = 10
_LAST_USED_RESOLUTION = timedelta(seconds=60)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


KEY_STYLES = {
    "reelforge": lambda key_id, secret: f"rf_live_{key_id}_{secret.hex()}",
    "dockora": lambda key_id, secret: f"dk_{secret.hex()}",
    "clipora": lambda key_id, secret: "ck_live_" + base64.urlsafe_b64encode(secret)
    .decode().rstrip("="),
    "qamera": lambda key_id, secret: f"mk_live_{key_id}.{secret.hex()}",
}


def create_key(session: Session, account: Account, name: str = "",
               style: str = "reelforge") -> tuple[ApiKey, str]:
    """Returns the row and the plaintext key, which is never stored nor shown again.

    ``style`` picks the key's format (one of ``KEY_STYLES``); every style carries a
    256-bit secret.
    """
    if style not in KEY_STYLES:
        raise Invalid(f"Unknown key format {style!r}.",
                      fix=f"Use one of: {', '.join(KEY_STYLES)}.")
    active = session.scalar(select(func.count()).select_from(ApiKey).where(
        ApiKey.account_id == account.id, ApiKey.revoked_at.is_(None))) or 0
    if active >= MAX_ACTIVE_KEYS:
        raise Conflict(f"Account already has {active} active API keys (the limit is "
                       f"{MAX_ACTIVE_KEYS}).", code="too_many_keys",
                       fix="Revoke a key you no longer use (DELETE /v1/keys/{id}), then retry.")
    key_id = secrets.token_hex(6)
    raw = KEY_STYLES[style](key_id, secrets.token_bytes(32))
    row = ApiKey(id=key_id, account_id=account.id, secret_hash=hash_key(raw),
                 prefix=raw[:16], name=name)
    session.add(row)
    session.flush()
    return row, raw


def authenticate(session: Session, raw: str) -> tuple[Account, ApiKey]:
    """The account and key for a presented key, or ``Unauthorized``."""
    if not raw:
        raise Unauthorized("No API key was sent.")
    row = session.scalar(select(ApiKey).where(ApiKey.secret_hash == hash_key(raw.strip())))
    if row is None:
        raise Unauthorized("The API key is not valid.", code="invalid_key",
                           fix="Check the key for typos, or create a new one with "
                               "`reelforge keys create --account NAME`.")
    if row.revoked_at is not None:
        raise Unauthorized("The API key has been revoked.", code="revoked_key",
                           fix="Use another key, or create a new one.")
    now = datetime.now(timezone.utc)
    if row.last_used_at is None or now - row.last_used_at > _LAST_USED_RESOLUTION:
        session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
        row.last_used_at = now
    account = session.get(Account, row.account_id)
    assert account is not None  # foreign key
    return account, row


def list_keys(session: Session, account: Account) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(ApiKey.account_id == account.id)
                                .order_by(ApiKey.created_at.desc())))


def revoke_key(session: Session, account: Account, key_id: str) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None or row.account_id != account.id:
        raise NotFound(f"No API key {key_id!r} on this account.",
                       fix="List keys with GET /v1/keys.")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(timezone.utc)
    return row
