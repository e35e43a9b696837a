"""Request dependencies: the runtime, and the authenticated, rate-limited caller."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from ..core import keys
from ..core.limits import RateState
from ..db.models import Account, ApiKey
from ..errors import Unauthorized
from ..runtime import Runtime
from .errors import backend_unavailable


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


@dataclass
class Caller:
    account: Account
    key: ApiKey
    rate: RateState


def presented_key(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key", "").strip()


def authenticate(request: Request, raw: str | None = None) -> Caller:
    """Check the key, count the request against the plan's limits, remember both."""
    rt = runtime(request)
    raw = presented_key(request) if raw is None else raw
    if not raw:
        raise Unauthorized("No API key was sent.", code="missing_key")
    with rt.db.session() as s:
        account, key = keys.authenticate(s, raw)
    request.state.credits = account.balance
    try:
        rate = rt.limiter.hit(key.id, rt.settings.plan(account.plan))
    except Exception as exc:
        down = backend_unavailable(exc)
        if down is None:
            raise
        raise down from exc
    request.state.rate = rate
    return Caller(account, key, rate)


def caller(request: Request) -> Caller:
    """FastAPI dependency for every authenticated native route."""
    return authenticate(request)
