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
from .queue import scheduler
from .queue.broker import JobQueue, make_broker
from .queue.progress import ProgressBus, make_progress_bus
from .queue.sweeper import Loop, background_loops
from .queue.worker import JobRunner
from .storage.base import Storage
from .storage.local import LocalStorage
from .storage.s3 import S3Storage

log = logging.getLogger("reelforge")


def make_storage(settings: Settings) -> Storage:
    """The backend named by the storage URL's scheme: file:///path or s3://bucket/prefix."""
    url = settings.storage_url
    if url.startswith("file://"):
        return LocalStorage(Path(url.removeprefix("file://")))
    if url.startswith("s3://"):
        storage = S3Storage.from_settings(settings)
        storage.ensure_bucket()
        return storage
    raise ValueError(f"Unsupported storage URL {url!r}: use file:///path or "
                     "s3://bucket/prefix (see README 'Scale out')")


def _limits_storage_url(settings: Settings) -> str:
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return settings.broker_url
    return "memory://"


def ensure_secret(settings: Settings) -> None:
    """Download URLs are signed with ``secret_key``; make one on first start."""
    if settings.secret_key:
        return
    if not settings.is_sqlite:
        log.warning("REELFORGE_SECRET_KEY is not set: this machine signs download links with "
                    "its own key, which other machines will refuse; set the same "
                    "REELFORGE_SECRET_KEY on every API and worker machine")
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
    progress: ProgressBus = field(default_factory=ProgressBus)
    loops: list[Loop] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings) -> "Runtime":
        ensure_secret(settings)
        db = Database(settings.database_url)
        storage = make_storage(settings)
        engines = build_engines(settings)
        limiter = RateLimiter(_limits_storage_url(settings))
        broker = make_broker(settings)
        progress = make_progress_bus(settings)
        holder: dict[str, JobQueue] = {}
        runner = JobRunner(settings, db, storage, engines,
                           requeue=lambda job_id: holder["q"].enqueue(job_id),
                           notify=progress.publish)
        queue = JobQueue(broker, runner.process,
                         priority_of=lambda job_id: scheduler.priority_of(db, job_id))
        holder["q"] = queue
        submitter = Submitter(settings, db, storage, engines,
                              enqueue=lambda job: queue.enqueue(job.id, job.priority))
        return cls(settings, db, storage, engines, limiter, queue, runner, submitter, progress)

    def start_workers(self, threads: int | None = None) -> None:
        """Worker threads plus the sweeper, storage and webhook loops, in this process."""
        from .core import leases

        threads = threads or self.settings.workers
        self.queue.start_workers(threads, self.runner.tiers)
        # jobs queued before a restart: one wake-up per thread drains them
        for job_id in leases.queued_ids(self.db)[:threads]:
            self.queue.enqueue(job_id)
        self.loops = background_loops(self.db, self.settings, self.storage, self.queue.enqueue)
        for loop in self.loops:
            loop.start()

    def stop(self) -> None:
        self.runner.draining.set()
        for loop in self.loops:
            loop.stop()
        self.queue.stop()
        self.runner.close()
        self.progress.close()
        self.db.dispose()
