"""The ASGI application: routers, the error table, request ids and limit headers."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from .. import __version__
from ..core.logs import request_id_var
from ..runtime import Runtime
from . import errors, files, native, ops
from .dialects import include_dialects

log = logging.getLogger("reelforge.http")


def create_app(rt: Runtime, *, start_workers: bool | None = None) -> FastAPI:
    """Build the app on a runtime; embedded workers start with the app when asked."""
    run_workers = rt.settings.embedded_workers if start_workers is None else start_workers

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_workers:
            rt.start_workers()
        try:
            yield
        finally:
            rt.stop()

    app = FastAPI(title="reelforge", version=__version__, lifespan=lifespan,
                  description="Self-hosted video generation API. Authenticate with "
                              "`Authorization: Bearer <key>` or `X-API-Key: <key>`.")
    app.state.runtime = rt
    errors.install(app)
    app.include_router(ops.router)
    app.include_router(native.router)
    app.include_router(files.router)
    include_dialects(app)
    app.middleware("http")(_request_context)
    return app


async def _request_context(request: Request,
                           call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Echo or mint X-Request-Id; add rate-limit and credit headers; log one line."""
    rid = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
    token = request_id_var.set(rid[:64])
    started = time.perf_counter()
    try:
        response = await call_next(request)
        _add_headers(request, response, rid[:64])
        log.info("%s %s -> %d in %.1f ms", request.method, request.url.path,
                 response.status_code, (time.perf_counter() - started) * 1000)
        return response
    finally:
        request_id_var.reset(token)


def _add_headers(request: Request, response: Response, rid: str) -> None:
    response.headers["X-Request-Id"] = rid
    rate = getattr(request.state, "rate", None)
    if rate is not None:
        for name, value in rate.headers().items():
            response.headers.setdefault(name, value)
    credits = getattr(request.state, "credits", None)
    if credits is not None:
        response.headers["X-Credits-Remaining"] = str(credits)
