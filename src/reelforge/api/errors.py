"""The one table from errors to HTTP answers: ``{"error": {"code", "message", "fix"}}``.

Dialects whose vendor has another error shape register a formatter for their prefix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..core.logs import request_id_var
from ..errors import Invalid, RateLimited, ReelforgeError, Unavailable

log = logging.getLogger("reelforge.api")

Formatter = Callable[[ReelforgeError, Request], tuple[int, dict[str, Any]]]
_FORMATTERS: list[tuple[str, Formatter]] = []

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "too_large",
               415: "unsupported_media", 422: "invalid", 429: "rate_limited"}


def register_formatter(prefix: str, formatter: Formatter) -> None:
    _FORMATTERS.append((prefix, formatter))
    _FORMATTERS.sort(key=lambda p: -len(p[0]))


def native_body(exc: ReelforgeError, request: Request) -> tuple[int, dict[str, Any]]:
    return exc.status, {"error": exc.to_dict()}


def error_response(exc: ReelforgeError, request: Request) -> JSONResponse:
    formatter: Formatter = native_body
    for prefix, fmt in _FORMATTERS:
        if request.url.path.startswith(prefix):
            formatter = fmt
            break
    status, body = formatter(exc, request)
    headers = {"X-Request-Id": request_id_var.get()}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
        state = getattr(exc, "state", None)
        if state is not None:
            headers.update(state.headers())
    return JSONResponse(body, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ReelforgeError)
    async def _ours(request: Request, exc: ReelforgeError) -> JSONResponse:
        if exc.status >= 500:
            log.error("%s: %s", exc.code, exc.message)
        return error_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
        msg = f"{where or 'request'}: {first.get('msg', 'is invalid')}"
        return error_response(Invalid(msg, fix="Correct that field; the schema is at /docs."),
                              request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        err = ReelforgeError(str(exc.detail), code=_HTTP_CODES.get(exc.status_code, "error"),
                             fix="Check the method and path against /docs.")
        err.status = exc.status_code
        return error_response(err, request)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        down = backend_unavailable(exc)
        if down is not None:
            log.error("%s: %s (%s: %s)", down.code, down.message, type(exc).__name__, exc)
            return error_response(down, request)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(ReelforgeError("The server hit an unexpected error."), request)


def backend_unavailable(exc: BaseException) -> Unavailable | None:
    """A lost connection to Redis (rate limits, queue) is a 503 with a fix, not a 500."""
    try:
        from limits.errors import StorageError
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - both ship with reelforge
        return None
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError, StorageError)):
        return Unavailable("Redis (rate limits and the job queue) is not reachable right now.",
                           fix="Retry in a few seconds; operators: check the Redis server and "
                               "REELFORGE_BROKER_URL.")
    return None
