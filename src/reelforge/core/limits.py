"""Per-key request rate limits (per minute and per day), on the ``limits`` library.

Embedded: in-memory storage. At scale: Redis, shared by every API process.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerDay, RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from ..config import Plan
from ..errors import RateLimited


@dataclass(frozen=True)
class Window:
    name: str  # "minute" | "day"
    limit: int
    remaining: int
    reset_at: float  # unix time
    seconds: int


@dataclass(frozen=True)
class RateState:
    windows: tuple[Window, ...]
    allowed: bool

    @property
    def tightest(self) -> Window:
        return min(self.windows, key=lambda w: (w.remaining, w.seconds))

    def headers(self) -> dict[str, str]:
        """IETF draft RateLimit/RateLimit-Policy plus the X-RateLimit-* trio."""
        now = time.time()
        minute = self.windows[0]
        reset_in = lambda w: max(0, math.ceil(w.reset_at - now))  # noqa: E731
        return {
            "RateLimit-Policy": ", ".join(f'"{w.name}";q={w.limit};w={w.seconds}'
                                          for w in self.windows),
            "RateLimit": ", ".join(f'"{w.name}";r={w.remaining};t={reset_in(w)}'
                                   for w in self.windows),
            "X-RateLimit-Limit": str(minute.limit),
            "X-RateLimit-Remaining": str(minute.remaining),
            "X-RateLimit-Reset": str(int(math.ceil(minute.reset_at))),
        }


class RateLimiter:
    def __init__(self, storage_url: str) -> None:
        self.storage_url = storage_url
        self._storage = storage_from_string(storage_url)
        self._limiter = MovingWindowRateLimiter(self._storage)

    def hit(self, key_id: str, plan: Plan) -> RateState:
        """Count one request for ``key_id``; raises ``RateLimited`` when over a limit."""
        items = (("minute", RateLimitItemPerMinute(plan.requests_per_minute), 60),
                 ("day", RateLimitItemPerDay(plan.requests_per_day), 86400))
        # each hit is atomic in its storage; the day window is only counted when the
        # minute window let the request through
        allowed = all(self._limiter.hit(item, "key", key_id) for _, item, _ in items)
        windows = []
        for name, item, seconds in items:
            stats = self._limiter.get_window_stats(item, "key", key_id)
            windows.append(Window(name, item.amount, max(0, stats.remaining),
                                  stats.reset_time, seconds))
        state = RateState(tuple(windows), allowed)
        if not allowed:
            blocked = [w for w in windows if w.remaining == 0] or windows
            retry = max(1, math.ceil(min(w.reset_at for w in blocked) - time.time()))
            err = RateLimited(f"Rate limit reached: {blocked[0].limit} requests per "
                              f"{blocked[0].name} for this key.", retry_after=retry)
            err.state = state  # type: ignore[attr-defined]
            raise err
        return state

    def reset(self) -> None:
        self._storage.reset()
