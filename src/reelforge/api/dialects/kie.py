"""KIE's Runway API (seed 004) under ``/kie``: Gen-4 generate and extend, Aleph.

A KIE client changes only its base URL to ``<server>/kie``.

- Auth: ``Authorization: Bearer <key>``; any key of the account.
- ``POST /api/v1/runway/generate``: ``prompt`` (required), ``imageUrl`` (image to
  video; without it, text to video, refused unless a generative engine is configured),
  ``duration`` 5 or 10, ``quality`` 720p or 1080p (10 s only at 720p, 1080p only for
  5 s), ``aspectRatio`` 16:9, 9:16, 1:1, 4:3 or 3:4, ``waterMark`` (text; empty for
  none), ``callBackUrl``.
- ``POST /api/v1/runway/extend``: ``taskId`` of a finished task, ``prompt``,
  ``quality``, ``callBackUrl``; the new task continues that video.
- ``POST /api/v1/aleph/generate``: ``prompt`` and ``videoUrl`` (https, at most 10 MB)
  required; ``aspectRatio`` (also 21:9), ``seed``, ``referenceImage``, ``waterMark``,
  ``uploadCn`` (recorded; storage is this server's), ``callBackUrl``.
- ``GET /api/v1/runway/record-detail`` and ``GET /api/v1/aleph/record-detail``
  (``?taskId=``): states wait (next in line), queueing (jobs ahead), generating,
  success, fail; ``videoInfo`` {videoId, videoUrl, imageUrl}; ``expireFlag`` 1 once the
  retention period (``retention_days``, 14 by default) has passed. Video links stay
  valid for that period.
- Every answer is the ``{"code", "msg", "data"}`` envelope with the HTTP status in
  ``code`` (and as the HTTP status); 451 when a source URL cannot be fetched.
- Callbacks: ``{"code": 200, "msg", "data": {"taskId", "videoInfo"}}`` on success, the
  error code and ``msg`` on failure; each carries the taskId and a stable
  ``webhook-id``, so redeliveries can be recognised.
- Task ids are UUIDs, a reversible mapping of the job id.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ...config import Settings
from ...core import assets, webhooks
from ...core.logs import request_id_var
from ...core.submission import InputRef, JobRequest
from ...db.models import Job
from ...errors import BadRequest, Invalid, NotFound, ReelforgeError
from ..deps import Caller, caller, runtime
from ..errors import register_formatter
from . import common

DIALECT = "kie"
PREFIX = "/kie"
GEN4_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4")
ALEPH_RATIOS = ("16:9", "9:16", "4:3", "3:4", "1:1", "21:9")
ALEPH_MAX_BYTES = 10 * 1024 * 1024
FAIL_CODES = {"media_error": 400, "source_unavailable": 451, "timed_out": 500,
              "cancelled": 400, "attempts_exhausted": 500}

router = APIRouter(prefix=PREFIX, tags=[DIALECT])


def ok(data: Any) -> dict[str, Any]:
    return {"code": 200, "msg": "success", "data": data}


class GenerateBody(BaseModel):
    prompt: str = Field(description="Actions, movements, camera angles")
    imageUrl: str | None = Field(None, description="Source image (image-to-video)")  # noqa: N815
    duration: int = Field(5, description="5 or 10 (10 only at 720p)")
    quality: str = Field("720p", description="720p or 1080p (1080p only for 5 s)")
    aspectRatio: str = Field("16:9", description=", ".join(GEN4_RATIOS))  # noqa: N815
    waterMark: str | None = Field(None, description="Watermark text; empty for none")  # noqa: N815
    callBackUrl: str | None = None  # noqa: N815


class ExtendBody(BaseModel):
    taskId: str  # noqa: N815
    prompt: str
    quality: str | None = Field(None, description="720p or 1080p")
    waterMark: str | None = None  # noqa: N815
    callBackUrl: str | None = None  # noqa: N815


class AlephBody(BaseModel):
    prompt: str
    videoUrl: str = Field(description="https, at most 10 MB")  # noqa: N815
    aspectRatio: str | None = Field(None, description=", ".join(ALEPH_RATIOS))  # noqa: N815
    seed: int | None = None
    referenceImage: str | None = None  # noqa: N815
    waterMark: str | None = None  # noqa: N815
    uploadCn: bool = False  # noqa: N815
    callBackUrl: str | None = None  # noqa: N815


def _prompt(prompt: str) -> str:
    if not prompt or not prompt.strip():
        raise Invalid("prompt is required.", fix="Describe the actions, movements and camera.",
                      field="prompt")
    return prompt


def _ratio(value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise Invalid(f"aspectRatio {value!r} is not supported here.",
                      fix=f"Use one of: {', '.join(allowed)}.", field="aspectRatio")
    return value


def _request(request: Request, mode: str, inputs: dict[str, Any], options: dict[str, Any],
             callback: str | None, meta: dict[str, Any], max_bytes: int | None = None
             ) -> JobRequest:
    return JobRequest(mode=mode, inputs=inputs,
                      options={k: v for k, v in options.items() if v not in (None, "")},
                      webhook_url=callback or None,
                      idempotency_key=request.headers.get("idempotency-key"), dialect=DIALECT,
                      meta=meta, request_id=request_id_var.get(), max_input_bytes=max_bytes)


@router.post("/api/v1/runway/generate", summary="Create a Gen-4 video task (text/image)")
async def generate(body: GenerateBody, request: Request,
                   who: Caller = Depends(caller)) -> dict[str, Any]:
    rt = runtime(request)
    _prompt(body.prompt)
    _ratio(body.aspectRatio, GEN4_RATIOS)
    if body.duration not in (5, 10):
        raise Invalid(f"duration {body.duration} is not supported.",
                      fix="Use 5 or 10 (10 only at 720p).", field="duration")
    inputs = {}
    if body.imageUrl:
        inputs["image"] = common.url_ref(body.imageUrl, "imageUrl", rt.settings)
    mode = "image_to_video" if body.imageUrl else "text_to_video"
    meta = {"kind": "runway", "generateParam": {"prompt": body.prompt,
                                                "imageUrl": body.imageUrl or ""}}
    req = _request(request, mode, inputs, {
        "prompt": body.prompt, "duration": body.duration, "quality": body.quality,
        "aspect_ratio": body.aspectRatio, "watermark": body.waterMark}, body.callBackUrl, meta)
    job, _ = await common.submit(request, who.account, who.key.id, req)
    return ok({"taskId": common.job_uuid(job.id)})


def _source(rt: Any, account: Any, task_id: str) -> Job:
    job, _ = common.load_job(rt, account, common.job_from_uuid(task_id), DIALECT)
    if (job.meta or {}).get("kind") != "runway":
        raise BadRequest("Only Gen-4 videos can be extended.",
                         fix="Pass the taskId of a /api/v1/runway/generate or /extend task.",
                         field="taskId")
    if job.status != "succeeded" or common.expired(job):
        raise BadRequest(f"Task {task_id} has no finished video to extend (state "
                         f"{_state(job, None)}).",
                         fix="Wait for state success (and within the retention period).",
                         field="taskId")
    return job


@router.post("/api/v1/runway/extend", summary="Extend a finished Gen-4 video")
async def extend(body: ExtendBody, request: Request,
                 who: Caller = Depends(caller)) -> dict[str, Any]:
    rt = runtime(request)
    _prompt(body.prompt)
    source = await run_in_threadpool(_source, rt, who.account, body.taskId)
    options = {"prompt": body.prompt, "quality": body.quality, "watermark": body.waterMark}
    await run_in_threadpool(rt.submitter.quote, "extend",  # refuse before copying the video
                            {k: v for k, v in options.items() if v not in (None, "")})
    asset = await run_in_threadpool(assets.asset_from_output, rt.db, rt.settings, rt.storage,
                                    who.account, source.id, "video")
    meta = {"kind": "runway", "parentTaskId": body.taskId,
            "generateParam": {"prompt": body.prompt, "imageUrl": ""}}
    req = _request(request, "extend", {"video": InputRef(asset_id=asset.id)}, options,
                   body.callBackUrl, meta)
    job, _ = await common.submit(request, who.account, who.key.id, req)
    return ok({"taskId": common.job_uuid(job.id)})


@router.post("/api/v1/aleph/generate", summary="Create an Aleph video-to-video task")
async def aleph(body: AlephBody, request: Request,
                who: Caller = Depends(caller)) -> dict[str, Any]:
    rt = runtime(request)
    _prompt(body.prompt)
    _ratio(body.aspectRatio, ALEPH_RATIOS)
    inputs = {"video": common.url_ref(body.videoUrl, "videoUrl", rt.settings, https_only=True)}
    if body.referenceImage:
        inputs["reference_image"] = common.url_ref(body.referenceImage, "referenceImage",
                                                   rt.settings)
    meta = {"kind": "aleph", "uploadCn": body.uploadCn,
            "generateParam": {"prompt": body.prompt, "videoUrl": body.videoUrl,
                              "referenceImage": body.referenceImage or ""}}
    req = _request(request, "video_to_video", inputs, {
        "prompt": body.prompt, "aspect_ratio": body.aspectRatio, "seed": body.seed,
        "watermark": body.waterMark}, body.callBackUrl, meta, ALEPH_MAX_BYTES)
    job, _ = await common.submit(request, who.account, who.key.id, req)
    return ok({"taskId": common.job_uuid(job.id)})


# ------------------------------------------------------------------ record detail

def _state(job: Job, position: int | None) -> str:
    if job.status == "queued":
        return "queueing" if position else "wait"
    return {"running": "generating", "succeeded": "success"}.get(job.status, "fail")


def _stamp(job: Job) -> str:
    when = job.completed_at or job.created_at
    return when.strftime("%Y-%m-%d %H:%M:%S")


def video_info(job: Job, settings: Settings) -> dict[str, Any] | None:
    video = common.signed_url(settings, job, "video")
    if video is None:
        return None
    return {"videoId": common.derived_uuid(job.id, "video"), "videoUrl": video,
            "imageUrl": common.signed_url(settings, job, "poster")}


def detail(job: Job, position: int | None, settings: Settings) -> dict[str, Any]:
    meta = job.meta or {}
    code, message, _ = common.failure(job)
    return {"taskId": common.job_uuid(job.id), "parentTaskId": meta.get("parentTaskId", ""),
            "generateParam": meta.get("generateParam", {}), "state": _state(job, position),
            "generateTime": _stamp(job), "videoInfo": video_info(job, settings),
            "failCode": FAIL_CODES.get(code or "", 500) if code else None,
            "failMsg": message or "", "expireFlag": 1 if common.expired(job) else 0}


def _detail(request: Request, who: Caller, task_id: str, kind: str) -> dict[str, Any]:
    rt = runtime(request)
    job, position = common.load_job(rt, who.account, common.job_from_uuid(task_id), DIALECT)
    if (job.meta or {}).get("kind") != kind:
        other = "aleph" if kind == "runway" else "runway"
        raise NotFound(f"Task {task_id} is not a {kind} task.",
                       fix=f"Poll /api/v1/{other}/record-detail for it.")
    return ok(detail(job, position, rt.settings))


@router.get("/api/v1/runway/record-detail", summary="Poll a Gen-4 task")
def runway_detail(request: Request, taskId: str = Query(...),  # noqa: N803
                  who: Caller = Depends(caller)) -> dict[str, Any]:
    return _detail(request, who, taskId, "runway")


@router.get("/api/v1/aleph/record-detail", summary="Poll an Aleph task")
def aleph_detail(request: Request, taskId: str = Query(...),  # noqa: N803
                 who: Caller = Depends(caller)) -> dict[str, Any]:
    return _detail(request, who, taskId, "aleph")


# ------------------------------------------------------------------ callbacks, errors

def callback(job: Job, settings: Settings) -> dict[str, Any]:
    data: dict[str, Any] = {"taskId": common.job_uuid(job.id)}
    if job.status == "succeeded":
        data["videoInfo"] = video_info(job, settings)
        return {"code": 200, "msg": "success", "data": data}
    code, message, _ = common.failure(job)
    data.update(state="fail", failMsg=message)
    return {"code": FAIL_CODES.get(code or "", 500), "msg": message, "data": data}


def error_body(exc: ReelforgeError, request: Request) -> tuple[int, dict[str, Any]]:
    msg = exc.message if not exc.fix else f"{exc.message} {exc.fix}"
    return exc.status, {"code": exc.status, "msg": msg, "data": None}


register_formatter(PREFIX + "/", error_body)
webhooks.register_payload(DIALECT, callback)
