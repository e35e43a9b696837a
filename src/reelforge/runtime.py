"""The parts of a running reelforge process, built once from Settings.

The API app, the CLI and ``reelforge worker`` all start from ``Runtime.build``; no
module builds its own database, storage or broker.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from .config import Settings
from .core.limits import RateLimiter
from .core.submission import Submitter
from .db.session import Database
from .engines.base import Engine
from .engines.registry import build_engines
from .queue.broker import JobQueue, make_broker
from .queue.sweeper import Loop, background_loops
from .queue.worker import JobRunner
from .storage.base import Storage
from .storage.local import LocalStorage

log = logging.getLogger("reelforge")


def make_storage(settings: Settings) -> Storage:
    url = settings.storage_url
    if url.startswith("file://"):
        return LocalStorage(Path(url.removeprefix("file://")))
    raise ValueError(f"Unsupported storage URL {url!r}: use file:///path "
                     "(S3 support: s3://bucket/prefix, see README 'Scale out')")


def _limits_storage_url(settings: Settings) -> str:
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return settings.broker_url
    return "memory://"


def ensure_secret(settings: Settings) -> None:
    """Download URLs are signed with ``secret_key``; make one on first start."""
    if settings.secret_key:
        return
    path = settings.data_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    settings.secret_key = path.read_text().strip()


@dataclass
class Runtime:
    settings: Settings
    db: Database
    storage: Storage
    engines: dict[str, Engine]
    limiter: RateLimiter
    queue: JobQueue
    runner: JobRunner
    submitter: Submitter
    loops: list[Loop] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings) -> "Runtime":
        ensure_secret(settings)
        db = Database(settings.database_url)
        storage = make_storage(settings)
        engines = build_engines(settings)
        limiter = RateLimiter(_limits_storage_url(settings))
        broker = make_broker(settings)
        holder: dict[str, JobQueue] = {}
        runner = JobRunner(settings, db, storage, engines,
                           requeue=lambda job_id: holder["q"].enqueue(job_id))
        queue = JobQueue(broker, runner.process)
        holder["q"] = queue
        submitter = Submitter(settings, db, storage, engines,
                              enqueue=lambda job: queue.enqueue(job.id))
        return cls(settings, db, storage, engines, limiter, queue, runner, submitter)

    def start_workers(self, threads: int | None = None) -> None:
        """Worker threads plus the sweeper and webhook loops, in this process."""
        from .core import leases

        self.queue.start_workers(threads or self.settings.workers)
        for job_id in leases.queued_ids(self.db):  # recover jobs queued before a restart
            self.queue.enqueue(job_id)
        self.loops = background_loops(self.db, self.settings, self.storage, self.queue.enqueue)
        for loop in self.loops:
            loop.start()

    def stop(self) -> None:
        for loop in self.loops:
            loop.stop()
        self.queue.stop()
        self.db.dispose()
