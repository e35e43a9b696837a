"""The queue only wakes workers; the database decides who runs what.

Embedded: Dramatiq's in-process StubBroker with worker threads in the API process.
At scale: Dramatiq's Redis broker, shared by API processes and `reelforge worker`s.

There is one Dramatiq queue per plan tier (``jobs.dedicated``, ``jobs.priority``,
``jobs.standard``), so a pool of workers can be kept for one tier
(``REELFORGE_WORKER_TIERS='["dedicated"]'``). A message names a job, but the worker
that receives it claims whichever job the scheduler picks (``scheduler.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import dramatiq
from dramatiq.brokers.stub import StubBroker

from ..config import Settings
from .scheduler import ALL_TIERS, TIER_NAMES

log = logging.getLogger("reelforge.queue")

STANDARD = max(ALL_TIERS)


def queue_name(priority: int) -> str:
    return f"jobs.{TIER_NAMES.get(priority, TIER_NAMES[STANDARD])}"


def make_broker(settings: Settings) -> dramatiq.Broker:
    if settings.is_embedded_broker:
        broker = StubBroker()
        broker.emit_after("process_boot")
        return broker
    if settings.broker_url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=settings.broker_url)
    raise ValueError(f"Unsupported broker URL {settings.broker_url!r}: use memory:// or "
                     "redis://host:6379/0")


class JobQueue:
    """One actor per tier, each ``run_job(job_id)``; retries are the sweeper's business."""

    def __init__(self, broker: dramatiq.Broker, handler: Callable[[str], None],
                 priority_of: Callable[[str], int] | None = None) -> None:
        self.broker = broker
        self.priority_of = priority_of
        self.actors = {p: dramatiq.actor(handler, broker=broker,
                                         actor_name=f"run_job_{TIER_NAMES[p]}",
                                         queue_name=queue_name(p), max_retries=0,
                                         time_limit=24 * 3600 * 1000)
                       for p in ALL_TIERS}
        self._worker: dramatiq.Worker | None = None

    def enqueue(self, job_id: str, priority: int | None = None) -> None:
        """Wake a worker for ``job_id``. Never raises: the sweeper rings again."""
        if priority is None and self.priority_of is not None:
            try:
                priority = self.priority_of(job_id)
            except Exception:  # any tier's worker can still take it
                priority = STANDARD
        try:
            self.actors.get(priority, self.actors[STANDARD]).send(job_id)
        except Exception as exc:  # the job row is safe in the database
            log.warning("could not enqueue job %s (%s: %s); the sweeper will retry",
                        job_id, type(exc).__name__, exc)

    def start_workers(self, threads: int, tiers: Sequence[int] = ALL_TIERS) -> None:
        self._worker = dramatiq.Worker(self.broker, worker_threads=threads, worker_timeout=250,
                                       queues={queue_name(p) for p in tiers})
        self._worker.start()

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop consuming; wait up to ``grace_s`` for jobs in flight to finish (a job
        still running after that is taken over by another worker when its lease ends)."""
        if self._worker is not None:
            self._worker.stop(timeout=int(grace_s * 1000))
            self._worker = None
        self.broker.close()

    def ping(self) -> None:
        client = getattr(self.broker, "client", None)
        if client is not None:
            client.ping()

    def depth(self) -> int | None:
        """Messages waiting in the broker, all tiers together."""
        names = [queue_name(p) for p in ALL_TIERS]
        if isinstance(self.broker, StubBroker):
            return sum(self.broker.queues[n].qsize() for n in names if n in self.broker.queues)
        client = getattr(self.broker, "client", None)
        if client is None:
            return None
        return sum(int(client.llen(f"{self.broker.namespace}:{n}")) for n in names)
