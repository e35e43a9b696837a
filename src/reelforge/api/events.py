"""Live progress as Server-Sent Events, read from the database.

Reading the job row (rather than trusting an in-process bus) means any API process can
serve any job's events, whichever worker runs it. Workers also publish a notice on the
progress bus (Redis pub/sub at scale) each time they record progress, which wakes the
stream at once; without one, the stream looks again every ``POLL_S``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ..core import jobs
from ..errors import Unavailable
from ..runtime import Runtime

POLL_S = 1.0  # fallback when no notice arrives (e.g. a cancel made by an API process)
MIN_GAP_S = 0.1  # at most this often per stream, however fast notices come


def _snapshot(rt: Runtime, job_id: str) -> dict[str, Any] | None:
    with rt.db.session() as s:
        job = s.get(jobs.Job, job_id)
        if job is None:
            return None
        return jobs.job_view(job, rt.settings, jobs.queue_position(s, job))


async def watch_job(rt: Runtime, job_id: str, request: Request) -> AsyncIterator[dict[str, Any]]:
    """Yield the job's view each time its status, stage or progress changes.

    A database outage pauses the stream (it resumes when the database answers again)
    rather than ending it.
    """
    last: tuple[Any, ...] | None = None
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
                last = state
                yield view
                if view["status"] in jobs.TERMINAL:
                    return
            await notices.wait(POLL_S)
            await asyncio.sleep(MIN_GAP_S)


async def job_event_stream(rt: Runtime, job_id: str, request: Request) -> AsyncIterator[bytes]:
    yield b"retry: 2000\n\n"
    async for view in watch_job(rt, job_id, request):
        kind = "end" if view["status"] in jobs.TERMINAL else "progress"
        yield f"event: {kind}\ndata: {json.dumps(view)}\n\n".encode()
