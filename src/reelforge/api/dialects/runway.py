"""The Runway API under ``/runway``, so the ``runwayml`` SDK works with only a base URL.

``RunwayML(api_key=KEY, base_url="<server>/runway")`` then
``client.image_to_video.create(...).wait_for_task_output()``, ``client.tasks.retrieve``,
``client.tasks.delete`` and ``client.organization.retrieve`` work unchanged.

- Every request needs ``X-Runway-Version: 2024-11-06`` (the SDK sends it) and
  ``Authorization: Bearer <key>``; any key of the account works.
- ``POST /v1/image_to_video``: ``model`` (recorded; the configured engine renders),
  ``promptImage`` (an https URL or a ``data:`` URI up to 5 MB, or ``[{uri, position:
  "first"}]``), ``promptText``, ``ratio`` (``1280:720``, ``720:1280``, ``1104:832``,
  ``832:1104``, ``960:960``, ``1584:672``, and 1080p ones such as ``1920:1080``),
  ``duration`` 5 or 10 (default 10; 5 at 1080p), ``seed``.
- ``POST /v1/text_to_video`` (refused unless a generative engine is configured) and
  ``POST /v1/video_to_video`` (``videoUri``, ``promptText``, ``references: [{type:
  "image", uri}]``, ``ratio``, ``seed``).
- ``GET /v1/tasks/{id}``: PENDING (queued), THROTTLED (queued behind the account's own
  running jobs), RUNNING (``progress`` 0–1), SUCCEEDED (``output``: signed URLs valid
  24 h), FAILED (``failure``, ``failureCode``), CANCELLED. ``DELETE /v1/tasks/{id}``
  cancels a pending or running task and deletes a finished one (outputs removed): 204,
  and the task is 404 afterwards.
- ``GET /v1/organization``: ``creditBalance``, the plan as ``tier``, today's usage.
- Errors: ``{"error": …, "fix": …}`` with Runway's statuses: 400 for any problem with
  the inputs (credits included), 401, 404, 405, 429 (rate or concurrency limits).
- Task ids are UUIDs, a reversible mapping of the job id.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select

from ...config import Settings
from ...core import accounts, jobs, leases
from ...core.logs import request_id_var
from ...core.submission import InputRef, JobRequest
from ...db.models import Job
from ...errors import BadRequest, ConcurrencyLimit, NotFound, ReelforgeError
from ..deps import Caller, caller, runtime
from ..errors import register_formatter
from ..native import read_fields
from . import common

DIALECT = "runway"
PREFIX = "/runway"
VERSIONS = ("2024-11-06",)
IMAGE_DATA_MAX = 5 * 1024 * 1024
VIDEO_DATA_MAX = 16 * 1024 * 1024
OUTPUT_TTL_S = 24 * 3600
MODELS = ("gen4_turbo", "gen4.5", "gen4_aleph", "aleph2", "veo3.1", "veo3.1_fast", "veo3")
ASPECTS = {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0, "4:3": 4 / 3, "3:4": 3 / 4,
           "4:5": 4 / 5, "21:9": 21 / 9}
FAILURE_CODES = {"media_error": "ASSET.INVALID", "source_unavailable": "ASSET.INVALID",
                 "unsupported_media": "ASSET.INVALID"}


def check_version(request: Request) -> None:
    version = request.headers.get("x-runway-version")
    if version not in VERSIONS:
        raise BadRequest(
            "The X-Runway-Version header is missing or names an unknown version."
            if not version else f"API version {version!r} is not supported.",
            code="bad_version", fix=f"Send X-Runway-Version: {VERSIONS[-1]}.")


router = APIRouter(prefix=PREFIX, tags=[DIALECT], dependencies=[Depends(check_version)])


# ------------------------------------------------------------------ translation

def ratio_options(ratio: Any) -> dict[str, str]:
    """``1280:720`` → aspect ratio 16:9 and quality 720p (1080p from 1900 px up)."""
    if ratio is None:
        return {}
    try:
        width, height = (int(x) for x in str(ratio).split(":"))
        if width <= 0 or height <= 0:
            raise ValueError
    except ValueError:
        raise BadRequest(f"ratio {ratio!r} is not WIDTH:HEIGHT.",
                         fix="e.g. 1280:720 (landscape) or 720:1280 (portrait).",
                         field="ratio") from None
    aspect = min(ASPECTS, key=lambda a: abs(ASPECTS[a] - width / height))
    if abs(ASPECTS[aspect] - width / height) > 0.08:
        raise BadRequest(f"ratio {ratio} is not a shape this server renders.",
                         fix="Use 1280:720, 720:1280, 1104:832, 832:1104, 960:960 or 1584:672.",
                         field="ratio")
    return {"aspect_ratio": aspect, "quality": "1080p" if max(width, height) >= 1900 else "720p"}


def _uri(value: Any, field: str, settings: Settings, max_bytes: int) -> InputRef:
    return common.url_ref(value, field, settings, https_only=True, data_max_bytes=max_bytes)


def _prompt_image(value: Any, settings: Settings) -> InputRef:
    if isinstance(value, list):
        firsts = [v for v in value if isinstance(v, dict) and v.get("position") == "first"]
        if len(value) != 1 or not firsts:
            raise BadRequest("This server animates from a first frame only.",
                             fix="Send promptImage as a URL, or [{\"uri\": …, "
                                 "\"position\": \"first\"}].", field="promptImage")
        value = firsts[0].get("uri")
    if not value:
        raise BadRequest("promptImage is required.",
                         fix="Send an https URL or a data:image/…;base64 URI.",
                         field="promptImage")
    return _uri(value, "promptImage", settings, IMAGE_DATA_MAX)


def _seed(body: dict[str, Any]) -> dict[str, Any]:
    seed = body.get("seed")
    return {} if seed is None else {"seed": seed}


def _common(body: dict[str, Any], request: Request, mode: str, inputs: dict[str, Any],
            options: dict[str, Any]) -> JobRequest:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model is required.", fix=f"e.g. \"gen4_turbo\" ({', '.join(MODELS)}).",
                         field="model")
    text = body.get("promptText")
    if text is not None and (not isinstance(text, str) or len(text) > 1000):
        raise BadRequest("promptText must be text of at most 1000 characters.",
                         fix="Shorten promptText.", field="promptText")
    options = {"prompt": text or "", **options, **_seed(body)}
    return JobRequest(mode=mode, inputs=inputs, options=options, dialect=DIALECT,
                      meta={"model": model, "ratio": body.get("ratio")},
                      idempotency_key=request.headers.get("idempotency-key"),
                      request_id=request_id_var.get())


async def _body(request: Request) -> dict[str, Any]:
    fields, _ = await read_fields(request)
    return fields


async def _create(request: Request, who: Caller, req: JobRequest) -> dict[str, str]:
    job, _ = await common.submit(request, who.account, who.key.id, req)
    return {"id": common.job_uuid(job.id)}


_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "object"}}}}}


@router.post("/v1/image_to_video", openapi_extra=_BODY,
             summary="Start an image-to-video task")
async def image_to_video(request: Request, who: Caller = Depends(caller)) -> dict[str, str]:
    rt = runtime(request)
    body = await _body(request)
    options = ratio_options(body.get("ratio") or "1280:720")
    options["duration"] = body.get("duration") or (5 if options["quality"] == "1080p" else 10)
    req = _common(body, request, "image_to_video",
                  {"image": _prompt_image(body.get("promptImage"), rt.settings)}, options)
    return await _create(request, who, req)


@router.post("/v1/text_to_video", openapi_extra=_BODY, summary="Start a text-to-video task")
async def text_to_video(request: Request, who: Caller = Depends(caller)) -> dict[str, str]:
    body = await _body(request)
    if not body.get("promptText"):
        raise BadRequest("promptText is required.", fix="Describe the video to generate.",
                         field="promptText")
    options = ratio_options(body.get("ratio") or "1280:720")
    options["duration"] = body.get("duration") or (5 if options["quality"] == "1080p" else 10)
    return await _create(request, who, _common(body, request, "text_to_video", {}, options))


@router.post("/v1/video_to_video", openapi_extra=_BODY,
             summary="Start a video-to-video (Aleph) task")
async def video_to_video(request: Request, who: Caller = Depends(caller)) -> dict[str, str]:
    rt = runtime(request)
    body = await _body(request)
    if not body.get("videoUri"):
        raise BadRequest("videoUri is required.", fix="Send an https URL or a data: URI.",
                         field="videoUri")
    if not body.get("promptText"):
        raise BadRequest("promptText is required.", fix="Describe the transformation.",
                         field="promptText")
    inputs = {"video": _uri(body["videoUri"], "videoUri", rt.settings, VIDEO_DATA_MAX)}
    refs = body.get("references") or []
    images = [r for r in refs if isinstance(r, dict) and r.get("type", "image") == "image"]
    if len(images) > 1:
        raise BadRequest("At most one reference image is supported.",
                         fix="Send one {\"type\": \"image\", \"uri\": …}.", field="references")
    if images:
        inputs["reference_image"] = _uri(images[0].get("uri"), "references", rt.settings,
                                         IMAGE_DATA_MAX)
    options = {k: v for k, v in ratio_options(body.get("ratio")).items() if k == "aspect_ratio"}
    return await _create(request, who, _common(body, request, "video_to_video", inputs,
                                               options))


# ------------------------------------------------------------------ tasks

def _load(rt: Any, account: Any, task_id: str) -> tuple[Job, int | None]:
    job, position = common.load_job(rt, account, common.job_from_uuid(task_id), DIALECT)
    if (job.meta or {}).get("deleted"):
        raise NotFound("No such task on this account.", fix="Deleted tasks cannot be fetched.")
    return job, position


def task_view(job: Job, settings: Settings, throttled: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": common.job_uuid(job.id),
                           "createdAt": common.iso(job.created_at, ms=True)}
    if job.status == "queued":
        out.update(status="THROTTLED" if throttled else "PENDING",
                   estimatedCost={"credits": job.cost})
    elif job.status == "running":
        out.update(status="RUNNING", progress=round(job.progress / 100, 3),
                   estimatedCost={"credits": job.cost})
    elif job.status == "succeeded":
        urls = [common.signed_url(settings, job, name, OUTPUT_TTL_S)
                for name in ("video",) if name in (job.outputs or {})]
        out.update(status="SUCCEEDED", output=[u for u in urls if u],
                   cost={"credits": job.cost})
    elif job.status == "failed":
        code, message, _ = common.failure(job)
        out.update(status="FAILED", failure=message,
                   failureCode=FAILURE_CODES.get(code or "", "INTERNAL"), cost={"credits": 0})
    else:
        out.update(status="CANCELLED", cost={"credits": 0})
    return out


@router.get("/v1/tasks/{task_id}", summary="A task's status (and output when it succeeded)")
def get_task(task_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    rt = runtime(request)
    job, _ = _load(rt, who.account, task_id)
    throttled = job.status == "queued" and common.running_jobs(rt, who.account.id) > 0
    return task_view(job, rt.settings, throttled)


@router.delete("/v1/tasks/{task_id}", status_code=204,
               summary="Cancel a pending/running task, or delete a finished one")
def delete_task(task_id: str, request: Request, who: Caller = Depends(caller)) -> Response:
    rt = runtime(request)
    job, _ = _load(rt, who.account, task_id)
    with rt.db.session() as s:
        row = s.get(Job, job.id)
        if row.status in jobs.ACTIVE:
            try:
                jobs.cancel(s, rt.settings, row, allow_running=True)
            except ReelforgeError:  # it ended meanwhile: delete it as a finished task
                pass
        request.state.credits = accounts.get_account(s, who.account.id).balance
    rt.storage.delete_prefix(f"jobs/{job.id}/")
    leases.mark_purged(rt.db, job.id)
    common.update_meta(rt, job.id, deleted=True)
    return Response(status_code=204)


@router.get("/v1/organization", summary="Credit balance, tier limits and today's usage")
def organization(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    rt = runtime(request)
    plan = rt.settings.plan(who.account.plan)
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    with rt.db.session() as s:
        account = accounts.get_account(s, who.account.id)
        metas = s.scalars(select(Job.meta).where(
            Job.account_id == account.id, Job.dialect == DIALECT, Job.created_at >= today)).all()
    usage: dict[str, dict[str, int]] = {}
    for meta in metas:
        model = (meta or {}).get("model") or "unknown"
        usage.setdefault(model, {"dailyGenerations": 0})["dailyGenerations"] += 1
    limits = {"maxConcurrentGenerations": plan.concurrent_jobs,
              "maxDailyGenerations": plan.requests_per_day}
    return {"creditBalance": account.balance,
            "tier": {"maxMonthlyCreditSpend": plan.monthly_credits,
                     "models": {m: dict(limits) for m in MODELS}},
            "usage": {"models": usage}}


def error_body(exc: ReelforgeError, request: Request) -> tuple[int, dict[str, Any]]:
    if isinstance(exc, ConcurrencyLimit):
        status = 429
    elif exc.status in (401, 404, 405, 429) or exc.status >= 500:
        status = exc.status
    else:
        status = 400
    return status, {"error": exc.message, "fix": exc.fix}


register_formatter(PREFIX + "/", error_body)
