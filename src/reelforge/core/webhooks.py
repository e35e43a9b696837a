"""Webhooks: an outbox written with the job's final status, delivered with retries.

An event row is created in the same transaction that makes a job terminal, so a
final state produces exactly one event (unique per job and event type), and every
redelivery of it carries the same ``webhook-id``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from ipaddress import ip_network
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..config import Settings
from ..db.models import Account, Job, WebhookDelivery, WebhookEvent
from ..db.session import Database
from ..errors import BadRequest, Forbidden, NotFound
from . import fetch
from .ids import new_id
from .signing import webhook_headers

log = logging.getLogger("reelforge.webhooks")

PayloadBuilder = Callable[[Job, Settings], dict[str, Any]]
_BUILDERS: dict[str, PayloadBuilder] = {}


def register_payload(dialect: str, builder: PayloadBuilder) -> None:
    """Dialects register the body their vendor's webhook has."""
    _BUILDERS[dialect] = builder


def check_webhook_url(url: str, settings: Settings, plan_allows: bool) -> str:
    if not plan_allows:
        raise Forbidden("Webhooks are not included in this account's plan.",
                        code="webhooks_not_in_plan",
                        fix="Poll the job status instead, or upgrade to a plan with webhooks.")
    if not url.startswith("https://") and not (settings.allow_http_webhooks
                                               and url.startswith("http://")):
        raise BadRequest("webhook_url must use https.", code="insecure_webhook_url",
                         fix="Use an https:// URL (operators may allow http with "
                             "REELFORGE_ALLOW_HTTP_WEBHOOKS=true).")
    fetch.check_url(url, allow_http=settings.allow_http_webhooks, trusted=_trusted(settings))
    return url


def _trusted(settings: Settings) -> list[Any]:
    return [ip_network(n, strict=False) for n in settings.trusted_networks]


def record_event(session: Session, job: Job, settings: Settings) -> WebhookEvent | None:
    """Add the outbox row for a job that just became terminal (same transaction)."""
    if not job.webhook_url:
        return None
    from .jobs import job_view  # views need signing + settings; no cycle at import time

    builder = _BUILDERS.get(job.dialect or "")
    body = builder(job, settings) if builder else {
        "type": f"job.{job.status}",
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "data": job_view(job, settings),
    }
    event = WebhookEvent(id=new_id("msg"), account_id=job.account_id, job_id=job.id,
                         event_type=f"job.{job.status}", url=job.webhook_url,
                         payload=json.dumps(body, separators=(",", ":"), default=str),
                         status="pending", attempts=0,
                         next_attempt_at=datetime.now(timezone.utc))
    session.add(event)
    return event


def deliver_due(db: Database, settings: Settings, limit: int = 20) -> int:
    """Send every event that is due; returns how many attempts were made."""
    now = datetime.now(timezone.utc)
    hold = timedelta(seconds=settings.webhook_timeout_s + 30)
    claimed: list[tuple[WebhookEvent, str]] = []
    with db.session() as s:
        due = s.scalars(select(WebhookEvent).where(
            WebhookEvent.status == "pending", WebhookEvent.next_attempt_at <= now)
            .order_by(WebhookEvent.next_attempt_at).limit(limit)).all()
        for event in due:
            # claim: push next_attempt_at forward so no other dispatcher sends it too
            won = s.execute(update(WebhookEvent).where(
                WebhookEvent.id == event.id, WebhookEvent.status == "pending",
                WebhookEvent.next_attempt_at == event.next_attempt_at)
                .values(next_attempt_at=now + hold, attempts=WebhookEvent.attempts + 1))
            if won.rowcount == 1:
                account = s.get(Account, event.account_id)
                claimed.append((event, account.webhook_secret if account else ""))
    for event, secret in claimed:
        _attempt(db, settings, event, secret)
    return len(claimed)


def _attempt(db: Database, settings: Settings, event: WebhookEvent, secret: str) -> None:
    body = event.payload.encode()
    headers = webhook_headers(secret, event.id, int(time.time()), body)
    headers["user-agent"] = "reelforge-webhooks/1"
    started = time.monotonic()
    status_code: int | None = None
    error: str | None = None
    try:
        status_code, _ = fetch.post_json_guarded(
            event.url, body, headers, timeout_s=settings.webhook_timeout_s,
            allow_http=settings.allow_http_webhooks, trusted=_trusted(settings))
        if not 200 <= status_code < 300:
            error = f"receiver answered HTTP {status_code}"
    except Exception as exc:  # any failure is a failed attempt, recorded and retried
        error = f"{type(exc).__name__}: {exc}"
    duration_ms = int((time.monotonic() - started) * 1000)
    attempt = event.attempts + 1
    with db.session() as s:
        s.add(WebhookDelivery(event_id=event.id, attempt=attempt, status_code=status_code,
                              error=error, duration_ms=duration_ms))
        values: dict[str, Any]
        if error is None:
            values = {"status": "delivered", "delivered_at": datetime.now(timezone.utc)}
        elif attempt >= len(settings.webhook_schedule_s):
            values = {"status": "failed"}
        else:
            delay = settings.webhook_schedule_s[attempt]
            values = {"next_attempt_at": datetime.now(timezone.utc) + timedelta(seconds=delay)}
        s.execute(update(WebhookEvent).where(WebhookEvent.id == event.id).values(**values))
    log.info("webhook %s to %s attempt %d: %s", event.id, event.url, attempt,
             error or f"delivered ({status_code})")


def list_events(session: Session, account: Account, limit: int = 50,
                job_id: str | None = None) -> list[tuple[WebhookEvent, list[WebhookDelivery]]]:
    stmt = select(WebhookEvent).where(WebhookEvent.account_id == account.id)
    if job_id:
        stmt = stmt.where(WebhookEvent.job_id == job_id)
    events = session.scalars(stmt.order_by(WebhookEvent.id.desc()).limit(limit)).all()
    out = []
    for event in events:
        deliveries = session.scalars(select(WebhookDelivery).where(
            WebhookDelivery.event_id == event.id).order_by(WebhookDelivery.attempt)).all()
        out.append((event, list(deliveries)))
    return out


def redeliver(session: Session, account: Account, event_id: str) -> WebhookEvent:
    event = session.get(WebhookEvent, event_id)
    if event is None or event.account_id != account.id:
        raise NotFound(f"No webhook event {event_id!r} on this account.",
                       fix="List events with GET /v1/webhooks/deliveries.")
    event.status = "pending"
    event.next_attempt_at = datetime.now(timezone.utc)
    return event
