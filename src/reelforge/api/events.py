"""Live progress as Server-Sent Events, read from the database.

Reading the job row (rather than trusting an in-process bus) means any API process can
serve any job's events, whichever worker runs it. Workers also publish a notice on the
progress bus (Redis pub/sub at scale) each time they record progress, which wakes the
stream at once; without one, the stream looks again every ``POLL_S``. While nothing
changes (a job waiting in the queue), the stream sends an SSE comment every
``KEEPALIVE_S`` so that proxies and load balancers do not close it as idle.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ..core import jobs
from ..errors import Unavailable
from ..runtime import Runtime

POLL_S = 1.0  # fallback when no notice arrives (e.g. a cancel made by an API process)
MIN_GAP_S = 0.1  # at most this often per stream, however fast notices come
KEEPALIVE_S = 15.0  # below the usual 30-60 s idle timeout of proxies


def _snapshot(rt: Runtime, job_id: str) -> dict[str, Any] | None:
    with rt.db.session() as s:
        job = s.get(jobs.Job, job_id)
        if job is None:
            return None
        return jobs.job_view(job, rt.settings, jobs.queue_position(s, job))


async def watch_job(rt: Runtime, job_id: str, request: Request, *,
                    idle_s: float | None = None) -> AsyncIterator[dict[str, Any] | None]:
    """Yield the job's view each time its status, stage or progress changes; with
    ``idle_s``, also ``None`` after that long without a change (for a keep-alive).

    A database outage pauses the stream (it resumes when the database answers again)
    rather than ending it.
    """
    last: tuple[Any, ...] | None = None
    quiet_since = time.monotonic()
    with rt.progress.subscribe(job_id) as notices:
        while not await request.is_disconnected():
            try:
                view = await run_in_threadpool(_snapshot, rt, job_id)
            except Unavailable:
                await asyncio.sleep(POLL_S)
                continue
            if view is None:
                return
            state = (view["status"], view["stage"], view["progress"], view["queue_position"])
            if state != last:
                last, quiet_since = state, time.monotonic()
                yield view
                if view["status"] in jobs.TERMINAL:
                    return
            elif idle_s is not None and time.monotonic() - quiet_since >= idle_s:
                quiet_since = time.monotonic()
                yield None
            await notices.wait(POLL_S)
            await asyncio.sleep(MIN_GAP_S)


async def job_event_stream(rt: Runtime, job_id: str, request: Request) -> AsyncIterator[bytes]:
    yield b"retry: 2000\n\n"
    async for view in watch_job(rt, job_id, request, idle_s=KEEPALIVE_S):
        if view is None:
            yield b": keep-alive\n\n"
            continue
        kind = "end" if view["status"] in jobs.TERMINAL else "progress"
        yield f"event: {kind}\ndata: {json.dumps(view)}\n\n".encode()
