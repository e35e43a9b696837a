"""vidgen (seed 001) under ``/vidgen``: one image plus one audio track make a video.

A vidgen client changes only its base URL to ``<server>/vidgen``.

- ``GET /health`` (no key); ``POST /api/jobs`` (multipart ``image``, ``audio``,
  optional ``webhookUrl``); ``GET /api/jobs`` (``limit`` 1–100, ``cursor``, ``status``);
  ``GET /api/status/{jobId}``; cancel while PENDING with ``DELETE /api/jobs/{jobId}``
  or ``POST /api/jobs/{jobId}/cancel`` (the seed names no path; both are accepted).
- Auth: ``X-API-Key``; a missing key and an unknown or revoked key are both 401, with
  the seed's two messages. Any key of the account works.
- One active job per API key (409), files up to 50 MB (413), only the documented MIME
  types (415): images JPEG/PNG/WebP, audio MP3/WAV/M4A/OGG.
- Statuses PENDING, PROCESSING, COMPLETED, FAILED, CANCELLED; job ids are ``cl`` plus
  the job id's 26 characters; ``retries`` counts attempts after the first.
- Per-IP limits as the seed lists them (600 requests/min on ``/api/*``, 30
  submissions/min), reported in ``RateLimit-Limit``/``-Remaining``/``-Reset`` headers;
  the account's plan limits apply too (``X-RateLimit-*``).
- Webhooks: ``webhookUrl`` must be https (400 otherwise; operators may allow http with
  ``REELFORGE_ALLOW_HTTP_WEBHOOKS``). The body is the ``/api/status`` shape, and
  ``X-Webhook-Signature`` is the hex HMAC-SHA256 of the raw body keyed with the
  account's webhook secret (``GET /v1/account/webhook-secret``), as the seed's Node
  snippet checks it.
- ``outputShareLink`` is a signed, key-less page that plays the video.
- Errors: ``{"error": …, "fix": …}``; request problems are 400.
"""

from __future__ import annotations

import html
import math
import time
from pathlib import PurePath
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from ...config import Plan, Settings
from ...core import jobs, webhooks
from ...core.limits import RateState
from ...core.logs import request_id_var
from ...core.signing import signed_query, verify_path
from ...core.submission import InputRef, JobRequest
from ...db.models import Job
from ...errors import (BadRequest, Conflict, Forbidden, Gone, RateLimited, ReelforgeError,
                       UnsupportedMedia)
from ..deps import Caller, authenticate, runtime
from ..errors import register_formatter
from ..native import read_fields
from . import common

DIALECT = "vidgen"
PREFIX = "/vidgen"
MAX_FILE_BYTES = 50 * 1024 * 1024
API_PER_MINUTE = 600
SUBMIT_PER_MINUTE = 30
STATUS = {"queued": "PENDING", "running": "PROCESSING", "succeeded": "COMPLETED",
          "failed": "FAILED", "cancelled": "CANCELLED"}
NATIVE = {v: k for k, v in STATUS.items()}
IMAGE_TYPES = {"image/jpeg", "image/jpg", "image/pjpeg", "image/png", "image/webp"}
AUDIO_TYPES = {"audio/mpeg", "audio/mp3", "audio/mpeg3", "audio/x-mpeg-3", "audio/wav",
               "audio/x-wav", "audio/wave", "audio/vnd.wave", "audio/mp4", "audio/x-m4a",
               "audio/m4a", "audio/aac", "audio/x-aac", "audio/ogg", "application/ogg",
               "audio/vorbis", "audio/opus"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp"}
AUDIO_EXTS = {".mp3", ".wav", ".m4a", ".ogg", ".oga", ".opus"}

router = APIRouter(prefix=PREFIX, tags=[DIALECT])


def public_id(job: Job) -> str:
    return f"cl{common.job_suffix(job.id)}"


def _job_id(value: str) -> str | None:
    return common.job_from_prefixed(value, "cl")


# ------------------------------------------------------------------ limits and auth

def _ip_limit(request: Request, scope: str, per_minute: int) -> None:
    rt = runtime(request)
    plan = Plan(requests_per_minute=per_minute, requests_per_day=10**9, concurrent_jobs=1,
                monthly_credits=0)
    ip = request.client.host if request.client else "unknown"
    try:
        request.state.vidgen_rate = rt.limiter.hit(f"vidgen:{scope}:{ip}", plan)
    except RateLimited as exc:
        request.state.vidgen_rate = getattr(exc, "state", None)
        raise


def api_caller(request: Request) -> Caller:
    """Every ``/api/*`` route: the per-IP limit, then the key (and the plan's limits)."""
    _ip_limit(request, "api", API_PER_MINUTE)
    return authenticate(request)


def _headers(request: Request, response: Response) -> None:
    state: RateState | None = getattr(request.state, "vidgen_rate", None)
    if state is None:
        return
    minute = state.windows[0]
    response.headers["RateLimit-Limit"] = str(minute.limit)
    response.headers["RateLimit-Remaining"] = str(minute.remaining)
    response.headers["RateLimit-Reset"] = str(max(0, math.ceil(minute.reset_at - time.time())))


# ------------------------------------------------------------------ views

def _links(settings: Settings, job: Job) -> tuple[str | None, str | None]:
    video = common.signed_url(settings, job, "video")
    if video is None:
        return None, None
    path = f"{PREFIX}/share/{public_id(job)}"
    ttl = max(settings.download_url_ttl_s, int(
        (job.expires_at.timestamp() - time.time()) if job.expires_at else 0))
    share = (f"{settings.public_base_url.rstrip('/')}{path}?"
             + signed_query(settings.secret_key, path, ttl))
    return video, share


def status_view(job: Job, settings: Settings) -> dict[str, Any]:
    video, share = _links(settings, job)
    _, message, _ = common.failure(job)
    return {"jobId": public_id(job), "status": STATUS[job.status],
            "progress": 100 if job.status == "succeeded" else int(job.progress),
            "outputVideo": video, "outputShareLink": share,
            "errorMessage": message if job.status == "failed" else None,
            "createdAt": common.iso(job.created_at, ms=True),
            "updatedAt": common.iso(job.updated_at, ms=True)}


def list_view(job: Job, settings: Settings) -> dict[str, Any]:
    video, share = _links(settings, job)
    _, message, _ = common.failure(job)
    return {"id": public_id(job), "status": STATUS[job.status], "outputVideo": video,
            "outputShareLink": share,
            "errorMessage": message if job.status == "failed" else None,
            "retries": max(0, job.attempt - 1),
            "createdAt": common.iso(job.created_at, ms=True),
            "updatedAt": common.iso(job.updated_at, ms=True), "webhookUrl": job.webhook_url}


# ------------------------------------------------------------------ routes

@router.get("/health", summary="Liveness probe (no authentication)")
def health() -> dict[str, str]:
    return {"status": "ok"}


def _upload(files: dict[str, Any], name: str, types: set[str], exts: set[str],
            what: str) -> InputRef:
    uploads = files.get(name) or []
    if not uploads:
        raise BadRequest(f"{name} file required.",
                         fix=f"Send the {what} as the multipart field '{name}' "
                             f"(curl -F \"{name}=@file\").", field=name)
    if len(uploads) > 1:
        raise BadRequest(f"Send one {name} file, not {len(uploads)}.",
                         fix=f"Send a single '{name}' field.", field=name)
    upload = uploads[0]
    declared = (upload.content_type or "").split(";")[0].strip().lower()
    ext = PurePath(upload.filename or "").suffix.lower()
    generic = declared in ("", "application/octet-stream", "binary/octet-stream")
    if (not generic and declared not in types) or (generic and ext and ext not in exts):
        raise UnsupportedMedia(f"The {name} file's type ({declared or ext}) is not supported.",
                               fix=f"Send {what}.")
    return InputRef(stream=upload.file)


@router.post("/api/jobs", status_code=201,
             summary="Submit a job: multipart image + audio (+ webhookUrl)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": {"schema": {"type": "object",
                                                    "required": ["image", "audio"],
                                                    "properties": {
                     "image": {"type": "string", "format": "binary"},
                     "audio": {"type": "string", "format": "binary"},
                     "webhookUrl": {"type": "string"}}}}}}})
async def create_job(request: Request) -> JSONResponse:
    await run_in_threadpool(_ip_limit, request, "api", API_PER_MINUTE)
    await run_in_threadpool(_ip_limit, request, "submit", SUBMIT_PER_MINUTE)
    who = await run_in_threadpool(authenticate, request)
    rt = runtime(request)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise BadRequest("The body must be multipart/form-data with image and audio files.",
                         fix="curl -F image=@portrait.jpg -F audio=@voiceover.mp3 …")
    fields, files = await read_fields(request)
    webhook = (fields.get("webhookUrl") or "").strip() or None
    if webhook and not webhook.startswith("https://") and not (
            rt.settings.allow_http_webhooks and webhook.startswith("http://")):
        raise BadRequest("webhookUrl must start with https://.",
                         fix="Use an HTTPS URL for webhooks; plain HTTP is rejected.",
                         field="webhookUrl")
    inputs = {"image": _upload(files, "image", IMAGE_TYPES, IMAGE_EXTS,
                               "a JPEG, PNG or WebP image"),
              "audio": _upload(files, "audio", AUDIO_TYPES, AUDIO_EXTS,
                               "an MP3, WAV, M4A or OGG audio file")}
    req = JobRequest(mode="image_audio_to_video", inputs=inputs, options={},
                     webhook_url=webhook,
                     idempotency_key=request.headers.get("idempotency-key"),
                     dialect=DIALECT, request_id=request_id_var.get(),
                     max_input_bytes=MAX_FILE_BYTES, max_active_per_key=1)
    job, created = await common.submit(request, who.account, who.key.id, req)
    return JSONResponse({"message": "Job created", "jobId": public_id(job)},
                        status_code=201 if created else 200)


@router.get("/api/jobs", summary="List your jobs, newest first (cursor-paginated)")
def list_jobs(request: Request, limit: int = Query(20, ge=1, le=100),
              cursor: str | None = None, status: str | None = Query(
                  None, description="PENDING, PROCESSING, COMPLETED, FAILED or CANCELLED"),
              who: Caller = Depends(api_caller)) -> dict[str, Any]:
    rt = runtime(request)
    native_status = None
    if status:
        native_status = NATIVE.get(status.upper())
        if native_status is None:
            raise BadRequest(f"Unknown status {status!r}.",
                             fix=f"Use one of: {', '.join(NATIVE)}.", field="status")
    job_cursor = None
    if cursor:
        job_cursor = _job_id(cursor)
        if job_cursor is None:
            raise BadRequest("cursor is not a nextCursor this API returned.",
                             fix="Pass pagination.nextCursor from the previous page, or omit it.",
                             field="cursor")
    with rt.db.session() as s:
        rows, next_cursor = jobs.list_jobs(s, who.account, limit=limit, cursor=job_cursor,
                                           status=native_status, dialect=DIALECT)
    return {"jobs": [list_view(j, rt.settings) for j in rows],
            "pagination": {"limit": limit,
                           "nextCursor": f"cl{common.job_suffix(next_cursor)}"
                           if next_cursor else None,
                           "hasNextPage": next_cursor is not None}}


@router.get("/api/status/{jobId}", summary="A job's status and progress (0–100)")
def job_status(jobId: str, request: Request,  # noqa: N803 - the seed's name
               who: Caller = Depends(api_caller)) -> dict[str, Any]:
    rt = runtime(request)
    job, _ = common.load_job(rt, who.account, _job_id(jobId), DIALECT, "job")
    return status_view(job, rt.settings)


def _cancel(request: Request, who: Caller, public: str) -> dict[str, Any]:
    rt = runtime(request)
    job, _ = common.load_job(rt, who.account, _job_id(public), DIALECT, "job")
    with rt.db.session() as s:
        job = s.get(Job, job.id)
        if job.status != "queued":
            raise Conflict(f"Job {public} is {STATUS[job.status]} and can no longer be "
                           "cancelled.", code="not_cancellable",
                           fix="Only PENDING jobs can be cancelled.")
        jobs.cancel(s, rt.settings, job)
    return {"success": True, "message": "Job cancelled successfully"}


@router.delete("/api/jobs/{jobId}", summary="Cancel a job while it is PENDING")
def cancel_delete(jobId: str, request: Request,  # noqa: N803
                  who: Caller = Depends(api_caller)) -> dict[str, Any]:
    return _cancel(request, who, jobId)


@router.post("/api/jobs/{jobId}/cancel", summary="Cancel a job while it is PENDING")
def cancel_post(jobId: str, request: Request,  # noqa: N803
                who: Caller = Depends(api_caller)) -> dict[str, Any]:
    return _cancel(request, who, jobId)


@router.get("/share/{jobId}", response_class=HTMLResponse,
            summary="The share page of a finished video (signed link, no key)")
def share(jobId: str, request: Request, expires: int = 0,  # noqa: N803
          sig: str = "") -> HTMLResponse:
    rt = runtime(request)
    if not verify_path(rt.settings.secret_key, f"{PREFIX}/share/{jobId}", expires, sig):
        raise Forbidden("This share link is invalid or has expired.", code="bad_signature",
                        fix="Fetch the job again for a fresh outputShareLink.")
    job_id = _job_id(jobId)
    with rt.db.session() as s:
        job = s.get(Job, job_id) if job_id else None
    video = common.signed_url(rt.settings, job, "video") if job is not None else None
    if video is None:
        raise Gone("This video is no longer available.")
    poster = common.signed_url(rt.settings, job, "poster") or ""
    page = ("<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' "
            "content='width=device-width,initial-scale=1'><title>vidgen video</title>"
            "<style>body{margin:0;background:#111;display:flex;min-height:100vh;"
            "align-items:center;justify-content:center}video{max-width:100%;"
            "max-height:100vh}</style></head><body>"
            f"<video controls playsinline src='{html.escape(video)}' "
            f"poster='{html.escape(poster)}'></video></body></html>")
    return HTMLResponse(page, headers={"Cache-Control": "private, max-age=300"})


# ------------------------------------------------------------------ errors, webhooks

_MESSAGES = {"missing_key": "Missing X-API-Key header.",
             "invalid_key": "API key not recognized or has been deactivated.",
             "revoked_key": "API key not recognized or has been deactivated."}


def error_body(exc: ReelforgeError, request: Request) -> tuple[int, dict[str, Any]]:
    status = 400 if exc.status == 422 else exc.status
    return status, {"error": _MESSAGES.get(exc.code, exc.message), "fix": exc.fix}


def webhook_payload(job: Job, settings: Settings) -> dict[str, Any]:
    return status_view(job, settings)


register_formatter(PREFIX, error_body)
common.register_headers(PREFIX, _headers)
webhooks.register_payload(DIALECT, webhook_payload)
