"""Background loops of a worker process: lease sweeper, storage upkeep, webhook dispatcher.

Every worker process runs them; they coordinate through conditional updates in the
database (and idempotent deletes in storage), so any number may run at once.

- ``sweeper``: requeue expired leases, fail jobs out of attempts, ring lost messages.
- ``storage``: outputs and inputs past retention; files of attempts that lost their
  job (``Reconciler``); uploads interrupted by a killed process; the work directories
  and ffmpeg orphans of dead worker processes on this machine.
- ``webhooks``: deliver due webhook events.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, select

from ..config import Settings
from ..core import leases, webhooks
from ..core.jobs import ACTIVE, TERMINAL
from ..db.models import Asset, Job
from ..db.session import Database
from ..errors import Unavailable
from ..storage.base import Storage
from .worker import reap_dead_workers, work_root

log = logging.getLogger("reelforge.sweeper")

INCOMPLETE_UPLOAD_S = 3600.0  # an upload still open after this long belongs to a dead process
EVERY_S = {"assets": 60.0, "incomplete": 600.0}  # the slower upkeep chores


class Loop(threading.Thread):
    """Runs ``tick`` every ``interval`` seconds until stopped; a failing tick is logged."""

    def __init__(self, name: str, interval: float, tick: Callable[[], object]) -> None:
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self.tick = tick
        self._stop_event = threading.Event()

    def run(self) -> None:
        down = False
        while not self._stop_event.is_set():
            try:
                self.tick()
                if down:
                    log.info("%s resumed", self.name)
                down = False
            except Unavailable as exc:  # once per outage, not a traceback every tick
                if not down:
                    log.warning("%s paused: %s", self.name, exc.message)
                down = True
            except Exception:
                log.exception("%s tick failed; retrying in %.1fs", self.name, self.interval)
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()


def sweep_once(db: Database, settings: Settings, storage: Storage,
               enqueue: Callable[[str], None]) -> None:
    for job_id in leases.sweep(db, settings):
        enqueue(job_id)
    for job in leases.expired_outputs(db):
        storage.delete_prefix(f"jobs/{job.id}/")
        leases.mark_purged(db, job.id)
        log.info("job %s: outputs removed after %d days", job.id, settings.retention_days)


def remove_expired_assets(db: Database, storage: Storage, limit: int = 200) -> int:
    """Delete inputs past retention, except those a queued or running job still needs."""
    now = datetime.now(timezone.utc)
    with db.session() as s:
        expired = s.execute(select(Asset.id, Asset.storage_key)
                            .where(Asset.expires_at < now).limit(limit)).all()
        if not expired:
            return 0
        in_use: set[str] = set()
        for inputs in s.scalars(select(Job.inputs).where(Job.status.in_(ACTIVE))):
            for ids in (inputs or {}).values():
                in_use.update(ids if isinstance(ids, list) else [ids])
    removed = 0
    for asset_id, key in expired:
        if asset_id in in_use:
            continue
        storage.delete_prefix(key)
        with db.session() as s:
            s.execute(delete(Asset).where(Asset.id == asset_id))
        removed += 1
    if removed:
        log.info("removed %d input(s) past retention", removed)
    return removed


class Reconciler:
    """Deletes stored files that no finished job owns.

    A worker killed between storing its outputs and finishing (or paused past its
    lease) leaves files under ``jobs/<id>/a<attempt>/``. Once a job is terminal, only
    a succeeded job's recorded outputs may remain. Each job is checked ``delay``
    seconds after it ended, when any late writer has been fenced out.
    """

    def __init__(self, db: Database, storage: Storage, delay_s: float) -> None:
        self.db, self.storage, self.delay = db, storage, timedelta(seconds=delay_s)
        # a restarted process covers what a crashed predecessor may not have reached
        self.watermark = datetime.now(timezone.utc) - 2 * self.delay

    def tick(self) -> int:
        upto = datetime.now(timezone.utc) - self.delay
        if upto <= self.watermark:
            return 0
        with self.db.session() as s:
            rows = s.execute(select(Job.id, Job.status, Job.outputs, Job.purged_at).where(
                Job.status.in_(TERMINAL), Job.completed_at > self.watermark,
                Job.completed_at <= upto)).all()
        removed = sum(self._reconcile(*row) for row in rows)
        self.watermark = upto
        return removed

    def _reconcile(self, job_id: str, status: str, outputs: dict | None,
                   purged_at: datetime | None) -> int:
        keep = set()
        if status == "succeeded" and purged_at is None:
            keep = {facts.get("key") for facts in (outputs or {}).values()}
        stray = [k for k in self.storage.list_keys(f"jobs/{job_id}") if k not in keep]
        for key in stray:
            self.storage.delete_prefix(key)
        if stray:
            log.warning("job %s: removed %d file(s) of attempts that did not finish it",
                        job_id, len(stray))
        return len(stray)


class StorageUpkeep:
    """The ``storage`` loop's tick: work dirs and reconcile each time, the rest slower."""

    def __init__(self, db: Database, settings: Settings, storage: Storage) -> None:
        self.db, self.settings, self.storage = db, settings, storage
        self.reconciler = Reconciler(db, storage, max(2 * settings.lease_seconds, 10.0))
        self._last: dict[str, float] = {}

    def _due(self, chore: str) -> bool:
        now = time.monotonic()
        if now - self._last.get(chore, -1e9) < EVERY_S[chore]:
            return False
        self._last[chore] = now
        return True

    def tick(self) -> None:
        reap_dead_workers(work_root(self.settings))
        self.reconciler.tick()
        if self._due("assets"):
            remove_expired_assets(self.db, self.storage)
        if self._due("incomplete"):
            self.storage.remove_incomplete(INCOMPLETE_UPLOAD_S)


def background_loops(db: Database, settings: Settings, storage: Storage,
                     enqueue: Callable[[str], None]) -> list[Loop]:
    upkeep = StorageUpkeep(db, settings, storage)
    return [
        Loop("sweeper", settings.sweep_interval_s,
             lambda: sweep_once(db, settings, storage, enqueue)),
        Loop("storage", max(settings.sweep_interval_s, 1.0), upkeep.tick),
        Loop("webhooks", settings.webhook_poll_s,
             lambda: webhooks.deliver_due(db, settings)),
    ]

