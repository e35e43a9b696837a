"""The queue only wakes workers; the database decides who runs what.

Embedded: Dramatiq's in-process StubBroker with worker threads in the API process.
At scale: Dramatiq's Redis broker, shared by API processes and `reelforge worker`s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import dramatiq
from dramatiq.brokers.stub import StubBroker

from ..config import Settings

log = logging.getLogger("reelforge.queue")

QUEUE = "jobs"


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
    """One actor, ``run_job(job_id)``; retries are the sweeper's business, not Dramatiq's."""

    def __init__(self, broker: dramatiq.Broker, handler: Callable[[str], None]) -> None:
        self.broker = broker
        self.actor = dramatiq.actor(handler, broker=broker, actor_name="run_job",
                                    queue_name=QUEUE, max_retries=0,
                                    time_limit=24 * 3600 * 1000)
        self._worker: dramatiq.Worker | None = None

    def enqueue(self, job_id: str) -> None:
        try:
            self.actor.send(job_id)
        except Exception:  # the sweeper rings again; the job row is safe in the database
            log.exception("could not enqueue job %s; the sweeper will retry", job_id)

    def start_workers(self, threads: int) -> None:
        self._worker = dramatiq.Worker(self.broker, worker_threads=threads,
                                       worker_timeout=250)
        self._worker.start()

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop(timeout=5000)
            self._worker = None
        self.broker.close()

    def ping(self) -> None:
        client = getattr(self.broker, "client", None)
        if client is not None:
            client.ping()

    def depth(self) -> int | None:
        if isinstance(self.broker, StubBroker):
            return self.broker.queues[QUEUE].qsize() if QUEUE in self.broker.queues else 0
        client = getattr(self.broker, "client", None)
        if client is None:
            return None
        return int(client.llen(f"{self.broker.namespace}:{QUEUE}"))
