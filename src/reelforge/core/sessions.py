"""Passwords and browser sessions, with no session table.

Passwords are hashed with scrypt (a random salt per password, parameters stored with
the hash). A session is a signed token ``<account id>.<expires>.<signature>``: an HMAC
with the server's ``secret_key`` over the account id, the expiry and a fingerprint of
the account's password hash, so changing the password ends every session at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import Settings
from ..db.models import Account
from ..errors import Conflict, Invalid, Unauthorized
from . import accounts

SESSION_TTL_S = 14 * 24 * 3600
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_PASSWORD = 8
_DECOY = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt${n}${r}${p}${salt}${digest}".format(
        **_SCRYPT, salt=base64.b64encode(salt).decode(), digest=base64.b64encode(digest).decode())


def verify_password(password: str, stored: str | None) -> bool:
    try:
        scheme, n, r, p, salt, digest = (stored or "").split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                             r=int(r), p=int(p), dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


def _sign(secret: str, account_id: str, expires: int, password_hash: str) -> str:
    fingerprint = hashlib.sha256(password_hash.encode()).hexdigest()[:16]
    msg = f"session\n{account_id}\n{expires}\n{fingerprint}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def make_token(settings: Settings, account: Account, ttl_s: int = SESSION_TTL_S,
               now: float | None = None) -> str:
    expires = int((now or time.time()) + ttl_s)
    sig = _sign(settings.secret_key, account.id, expires, account.password_hash or "")
    return f"{account.id}.{expires}.{sig}"


def account_for_token(session: Session, settings: Settings, token: str,
                      now: float | None = None) -> Account | None:
    """The account a session token belongs to, or None when it is forged or expired."""
    try:
        account_id, expires_text, sig = token.split(".")
        expires = int(expires_text)
    except ValueError:
        return None
    if expires < (now or time.time()):
        return None
    account = session.get(Account, account_id)
    if account is None or not account.password_hash:
        return None
    good = _sign(settings.secret_key, account.id, expires, account.password_hash)
    return account if hmac.compare_digest(good, sig) else None


def signup(session: Session, settings: Settings, email: str, password: str) -> Account:
    email = email.strip().lower()
    if "@" not in email or len(email) > 200 or email.startswith("@"):
        raise Invalid("A valid email address is required.", fix="Send {\"email\": …}.",
                      field="email")
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"The password must have at least {MIN_PASSWORD} characters.",
                      fix="Choose a longer password.", field="password")
    if session.scalar(select(Account.id).where(
            (Account.email == email) | (Account.name == email))):
        raise Conflict("An account with this email already exists.", code="email_exists",
                       fix="Log in instead, or use another email.")
    account = accounts.create_account(session, settings, email)
    account.email = email
    account.password_hash = hash_password(password)
    session.flush()
    return account


def login(session: Session, email: str, password: str) -> Account:
    account = session.scalar(select(Account).where(Account.email == email.strip().lower()))
    if account is None:
        verify_password(password, _DECOY)  # the same work whether or not the email exists
    if account is None or not verify_password(password, account.password_hash):
        raise Unauthorized("The email or password is wrong.", code="bad_credentials",
                           fix="Check both, or sign up first.")
    return account
