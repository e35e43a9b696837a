"""Background loops of a worker process: lease sweeper, retention, webhook dispatcher."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..config import Settings
from ..core import leases, webhooks
from ..db.session import Database
from ..storage.base import Storage

log = logging.getLogger("reelforge.sweeper")


class Loop(threading.Thread):
    """Runs ``tick`` every ``interval`` seconds until stopped; a failing tick is logged."""

    def __init__(self, name: str, interval: float, tick: Callable[[], object]) -> None:
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self.tick = tick
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.tick()
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


def background_loops(db: Database, settings: Settings, storage: Storage,
                     enqueue: Callable[[str], None]) -> list[Loop]:
    return [
        Loop("sweeper", settings.sweep_interval_s,
             lambda: sweep_once(db, settings, storage, enqueue)),
        Loop("webhooks", settings.webhook_poll_s,
             lambda: webhooks.deliver_due(db, settings)),
    ]
