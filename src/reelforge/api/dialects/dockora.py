"""Dockora (seed 000) under ``/dockora``: ``POST /api-generate``, ``GET /api-status``.

A Dockora client changes only its base URL to ``<server>/dockora``.

- Auth: ``X-API-Key`` (or ``Authorization: Bearer``). Any key of the account works;
  ``POST /dockora/api-keys`` (called with a key you have, e.g. one from
  ``reelforge keys create``) mints one in Dockora's ``dk_…`` format.
- Modes: image_to_video (``image_url``), text_to_video (refused unless a generative
  engine is configured) and Gen-4 Aleph video_to_video (``video_url``, ``prompt`` of
  at most 500 characters, ``transform_style``, ``duration`` 5 or 10, sources up to
  100 MB). Images and text make a 10-second HD (720p) video unless ``duration`` says 5.
- Statuses: pending (queued), processing (running), succeeded, failed (failed or
  cancelled). Task ids are ``task_<26 chars>``, the job id's own characters.
- Errors: ``{"error", "code", "fix", …}`` with the HTTP status in ``code``; request
  problems are 422, a full concurrency allowance is 429, as the seed lists.
- Headers: ``X-RateLimit-*`` and ``X-Credits-Remaining`` on every authenticated answer.
- Webhooks (``webhook_url``) only on plans with webhooks (Growth/Enterprise), body as
  documented, signed with Standard Webhooks headers and ``X-Webhook-Signature``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from ...config import Settings
from ...core import keys, webhooks
from ...core.logs import request_id_var
from ...core.submission import JobRequest
from ...db.models import Job
from ...engines.base import STYLES, TRANSFORM_STYLES
from ...errors import ConcurrencyLimit, Invalid, ReelforgeError
from ..deps import Caller, caller, runtime
from ..errors import register_formatter
from . import common

DIALECT = "dockora"
PREFIX = "/dockora"
MODES = ("image_to_video", "text_to_video", "video_to_video")
MAX_SOURCE_BYTES = 100 * 1024 * 1024
MAX_ALEPH_PROMPT = 500
STATUS = {"queued": "pending", "running": "processing", "succeeded": "succeeded",
          "failed": "failed", "cancelled": "failed"}

router = APIRouter(prefix=PREFIX, tags=[DIALECT])


class GenerateRequest(BaseModel):
    mode: str = Field(description="image_to_video, text_to_video or video_to_video")
    image_url: str | None = Field(None, description="Public URL of a JPEG/PNG/WebP image; "
                                                    "required for image_to_video")
    video_url: str | None = Field(None, description="Public URL of an MP4/MOV/WEBM video "
                                                    "(max 100 MB); required for video_to_video")
    prompt: str | None = Field(None, description="Motion description, or for "
                                                 "video_to_video the transformation (max 500)")
    style: str | None = Field(None, description=", ".join(STYLES))
    transform_style: str | None = Field(None, description=", ".join(TRANSFORM_STYLES))
    duration: int | None = Field(None, description="5 or 10 seconds")
    webhook_url: str | None = Field(None, description="https URL to POST when the video is "
                                                      "ready (Growth/Enterprise only)")


def task_id(job: Job) -> str:
    return f"task_{common.job_suffix(job.id)}"


def poll_url(settings: Settings, job: Job) -> str:
    return f"{settings.public_base_url.rstrip('/')}{PREFIX}/api-status?task_id={task_id(job)}"


def _job_request(body: GenerateRequest, request: Request) -> JobRequest:
    rt = runtime(request)
    if body.mode not in MODES:
        raise Invalid(f"mode {body.mode!r} is not supported.",
                      fix=f"Use one of: {', '.join(MODES)}.", field="mode")
    if body.duration is not None and body.duration not in (5, 10):
        raise Invalid(f"duration {body.duration} is not supported.",
                      fix="Use 5 or 10 (seconds).", field="duration")
    inputs: dict[str, Any] = {}
    options: dict[str, Any] = {"prompt": body.prompt or ""}
    meta: dict[str, Any] = {"mode": body.mode}
    if body.mode == "video_to_video":
        if not body.video_url:
            raise Invalid("video_url is required for video_to_video.",
                          fix="Pass the public URL of an MP4, MOV or WEBM video (max 100 MB).",
                          field="video_url")
        if not body.prompt or not body.prompt.strip():
            raise Invalid("prompt is required for video_to_video.",
                          fix="Describe the transformation, e.g. \"Transform into Studio "
                              "Ghibli animation style\".", field="prompt")
        if len(body.prompt) > MAX_ALEPH_PROMPT:
            raise Invalid(f"prompt has {len(body.prompt)} characters; Gen-4 Aleph takes at "
                          f"most {MAX_ALEPH_PROMPT}.", fix="Shorten the prompt.",
                          field="prompt")
        inputs["video"] = common.url_ref(body.video_url, "video_url", rt.settings)
        options.update(duration=body.duration or 5, transform_style=body.transform_style)
        meta.update(model="gen4_aleph", transform_style=body.transform_style or "color_grade")
    else:
        if body.mode == "image_to_video":
            if not body.image_url:
                raise Invalid("image_url is required for image_to_video.",
                              fix="Pass the public URL of a JPEG, PNG or WebP image.",
                              field="image_url")
            inputs["image"] = common.url_ref(body.image_url, "image_url", rt.settings)
        options.update(duration=body.duration or 10, style=body.style, quality="720p")
        meta.update(model="gen4_turbo", style=body.style or "cinematic")
    return JobRequest(mode=body.mode, inputs=inputs,
                      options={k: v for k, v in options.items() if v is not None},
                      webhook_url=body.webhook_url or None,
                      idempotency_key=request.headers.get("idempotency-key"),
                      dialect=DIALECT, meta=meta, request_id=request_id_var.get(),
                      max_input_bytes=MAX_SOURCE_BYTES)


@router.post("/api-generate", summary="Start an image/text/video generation task")
async def generate(body: GenerateRequest, request: Request,
                   who: Caller = Depends(caller)) -> dict[str, Any]:
    rt = runtime(request)
    req = _job_request(body, request)
    job, _ = await common.submit(request, who.account, who.key.id, req)
    out: dict[str, Any] = {"task_id": task_id(job), "status": STATUS[job.status],
                           "mode": job.mode}
    if job.mode == "video_to_video":
        out.update(model="gen4_aleph", duration=job.options.get("duration"))
        message = "Gen-4 Aleph transformation started. Poll every 4 seconds."
    else:
        out["style"] = job.options.get("style")
        message = "Video generation started. Poll every 4 seconds."
    out.update(credits_remaining=request.state.credits, poll_url=poll_url(rt.settings, job),
               message=message)
    return out


def task_view(job: Job, settings: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {"task_id": task_id(job), "status": STATUS[job.status],
                           "mode": job.mode}
    if job.mode == "video_to_video":
        out.update(model="gen4_aleph", transform_style=job.options.get("transform_style"))
    else:
        out["style"] = job.options.get("style")
    out.update(video_url=common.signed_url(settings, job, "video"),
               thumbnail_url=common.signed_url(settings, job, "poster"),
               duration=job.options.get("duration"),
               progress=100 if job.status == "succeeded" else int(job.progress),
               created_at=common.iso(job.created_at), completed_at=common.iso(job.completed_at))
    code, message, fix = common.failure(job)
    if code is not None:
        out.update(error=message, fix=fix)
    return out


@router.get("/api-status", summary="Poll a task's status and get its video URL")
def status(request: Request, task_id: str = Query(..., description="From /api-generate"),
           who: Caller = Depends(caller)) -> dict[str, Any]:
    rt = runtime(request)
    job, _ = common.load_job(rt, who.account, common.job_from_prefixed(task_id, "task_"),
                             DIALECT)
    return task_view(job, rt.settings)


class KeyRequest(BaseModel):
    name: str = ""


@router.post("/api-keys", status_code=201,
             summary="Create a dk_… API key (shown once); call it with a key you have")
def create_key(request: Request, body: KeyRequest | None = None,
               who: Caller = Depends(caller)) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        row, raw = keys.create_key(s, who.account, (body.name if body else "") or "dockora",
                                   style="dockora")
        return {"id": row.id, "name": row.name, "api_key": raw,
                "created_at": common.iso(row.created_at),
                "message": "Store this key now: it is not shown again."}


def webhook_payload(job: Job, settings: Settings) -> dict[str, Any]:
    body: dict[str, Any] = {"task_id": task_id(job), "status": STATUS[job.status],
                            "video_url": common.signed_url(settings, job, "video"),
                            "mode": job.mode}
    if job.mode == "video_to_video":
        body.update(model="gen4_aleph", transform_style=job.options.get("transform_style"),
                    duration=job.options.get("duration"))
    else:
        body["style"] = job.options.get("style")
    body["completed_at"] = common.iso(job.completed_at)
    code, message, fix = common.failure(job)
    if code is not None:
        body.update(error=message, fix=fix)
    return body


_STATUS_MAP = {400: 422, 415: 422, 451: 422}


def error_body(exc: ReelforgeError, request: Request) -> tuple[int, dict[str, Any]]:
    status = 429 if isinstance(exc, ConcurrencyLimit) else common.status_for(exc, _STATUS_MAP)
    body: dict[str, Any] = {"error": exc.message, "code": status, "fix": exc.fix}
    body.update({k: v for k, v in exc.extra.items() if k in ("credits_remaining", "plan")})
    return status, body


register_formatter(PREFIX, error_body)
webhooks.register_payload(DIALECT, webhook_payload)
