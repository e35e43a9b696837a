"""Progress notices: a worker says "job X changed", watchers of X re-read its row.

The database stays the truth; a notice only wakes the SSE/WebSocket streams sooner
than their fallback poll. Embedded: an in-process bus. At scale: Redis pub/sub, so a
worker on any machine wakes the watchers in every API process. A lost notice costs
at most one poll interval.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict
from typing import Any

from ..config import Settings

log = logging.getLogger("reelforge.progress")


class Subscription:
    """Watches one job from one event loop; ``await wait(timeout)`` until a notice."""

    def __init__(self, bus: ProgressBus, job_id: str) -> None:
        self.bus, self.job_id = bus, job_id
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        """True when a notice came, False when ``timeout`` passed first."""
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            self.event.clear()

    def __enter__(self) -> Subscription:
        self.bus._add(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.bus._remove(self)


class ProgressBus:
    """In-process bus (embedded); the base of the Redis one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[str, set[Subscription]] = defaultdict(set)

    def publish(self, job_id: str) -> None:
        self._wake(job_id)

    def subscribe(self, job_id: str) -> Subscription:
        """Use as ``with bus.subscribe(job_id) as sub:`` inside a coroutine."""
        return Subscription(self, job_id)

    def close(self) -> None:
        pass

    def _add(self, sub: Subscription) -> None:
        with self._lock:
            self._subs[sub.job_id].add(sub)

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.job_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.job_id]

    def _wake(self, job_id: str | None) -> None:
        """Wake the watchers of ``job_id`` (None: all of them) in this process."""
        with self._lock:
            subs = ([s for group in self._subs.values() for s in group] if job_id is None
                    else list(self._subs.get(job_id, ())))
        for sub in subs:
            try:
                sub.loop.call_soon_threadsafe(sub.event.set)
            except RuntimeError:  # its loop has closed
                self._remove(sub)


class RedisProgressBus(ProgressBus):
    """Redis pub/sub: one channel, the job id as the message.

    The listening thread starts with the first subscription, so processes that only
    publish (workers) never hold a subscriber connection.
    """

    def __init__(self, url: str) -> None:
        import redis

        super().__init__()
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        db = self.client.connection_pool.connection_kwargs.get("db", 0)
        self.channel = f"reelforge:{db}:progress"  # pub/sub ignores db numbers
        self._listener: threading.Thread | None = None
        self._closed = threading.Event()
        self._failed_at = 0.0

    def publish(self, job_id: str) -> None:
        try:
            self.client.publish(self.channel, job_id)
        except Exception as exc:  # watchers fall back to polling
            if time.monotonic() - self._failed_at > 30:
                log.warning("could not publish progress (%s); watchers will poll", exc)
            self._failed_at = time.monotonic()

    def _add(self, sub: Subscription) -> None:
        super()._add(sub)
        with self._lock:
            if self._listener is None:
                self._listener = threading.Thread(target=self._listen, name="progress-bus",
                                                  daemon=True)
                self._listener.start()

    def _listen(self) -> None:
        backoff = 0.5
        while not self._closed.is_set():
            pubsub: Any = None
            try:
                pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                self._wake(None)  # notices may have been missed while (re)connecting
                backoff = 0.5
                while not self._closed.is_set():
                    msg = pubsub.get_message(timeout=1.0)
                    if msg and msg.get("type") == "message":
                        data = msg["data"]
                        self._wake(data.decode() if isinstance(data, bytes) else str(data))
            except Exception as exc:
                if not self._closed.is_set():
                    log.warning("progress subscription lost (%s); reconnecting in %.1fs",
                                exc, backoff)
                    self._closed.wait(backoff)
                    backoff = min(backoff * 2, 10.0)
            finally:
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:
                        pass

    def close(self) -> None:
        self._closed.set()
        try:
            self.client.close()
        except Exception:
            pass


def make_progress_bus(settings: Settings) -> ProgressBus:
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return RedisProgressBus(settings.broker_url)
    return ProgressBus()
