"""Live progress as Server-Sent Events, read from the database.

Reading the job row (rather than an in-process bus) means any API process can serve
any job's events, whichever worker runs it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ..core import jobs
from ..runtime import Runtime

POLL_S = 0.25


def _snapshot(rt: Runtime, job_id: str) -> dict[str, Any] | None:
    with rt.db.session() as s:
        job = s.get(jobs.Job, job_id)
        if job is None:
            return None
        return jobs.job_view(job, rt.settings, jobs.queue_position(s, job))


async def watch_job(rt: Runtime, job_id: str, request: Request) -> AsyncIterator[dict[str, Any]]:
    """Yield the job's view each time its status, stage or progress changes."""
    last: tuple[Any, ...] | None = None
    while not await request.is_disconnected():
        view = await run_in_threadpool(_snapshot, rt, job_id)
        if view is None:
            return
        state = (view["status"], view["stage"], view["progress"], view["queue_position"])
        if state != last:
            last = state
            yield view
            if view["status"] in jobs.TERMINAL:
                return
        await asyncio.sleep(POLL_S)


async def job_event_stream(rt: Runtime, job_id: str, request: Request) -> AsyncIterator[bytes]:
    yield b"retry: 2000\n\n"
    async for view in watch_job(rt, job_id, request):
        kind = "end" if view["status"] in jobs.TERMINAL else "progress"
        yield f"event: {kind}\ndata: {json.dumps(view)}\n\n".encode()
