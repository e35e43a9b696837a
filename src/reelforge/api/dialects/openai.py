"""The OpenAI Videos API under ``/openai``, for the ``openai`` SDK's ``client.videos``.

``OpenAI(api_key=KEY, base_url="<server>/openai/v1")`` then ``client.videos.create``,
``create_and_poll``, ``retrieve``, ``list``, ``delete``, ``download_content``,
``remix``, ``extend`` and ``edit`` work unchanged.

- ``POST /v1/videos`` takes multipart (what the SDK always sends) or JSON: ``prompt``,
  ``input_reference`` (an image file, or ``{"image_url": https URL or data URL}``, or
  ``{"file_id": <asset id>}``), ``model`` (recorded), ``seconds`` and ``size``. The
  local engine animates an input image, so ``input_reference`` is needed unless a
  generative engine is configured. ``seconds`` takes OpenAI's 4, 8 and 12, but this
  server's engines make 5- or 10-second clips (core ``duration``), so each maps to the
  nearest clip they make: 4 makes 5 s, 8 makes 10 s, and 12 makes 10 s too (the
  longest clip there is; nothing is slowed down or looped to fake the last 2 s).
  ``seconds`` in the answer is what was made ("5" or "10"), never what was asked.
  ``size`` 720x1280, 1280x720 (720p) or 1024x1792, 1792x1024 (1080p, with seconds 4
  only: 1080p is made in 5-second clips).
- ``GET /v1/videos/{id}`` (with ``openai-poll-after-ms``), ``GET /v1/videos`` (``after``,
  ``limit``, ``order``; ``data``, ``first_id``, ``last_id``, ``has_more``), ``DELETE
  /v1/videos/{id}`` (cancels an unfinished one first), ``GET /v1/videos/{id}/content``
  with ``variant`` video, thumbnail or spritesheet (Range supported).
- ``POST /v1/videos/{id}/remix`` re-renders a completed video with a new prompt
  (video_to_video on its output); ``POST /v1/videos/extensions`` continues one
  (``video`` = ``{"id"}`` or a file, ``seconds`` 4 or 8, reported as the stitched
  total); ``POST /v1/videos/edits`` edits one (video_to_video).
- Statuses queued, in_progress, completed, failed (a cancelled job is failed with code
  ``cancelled``); ``progress`` is an integer; times are Unix seconds.
- Errors: ``{"error": {"message", "type", "param", "code"}}``, with OpenAI's statuses
  (400 for invalid requests; 429 for rate limits, concurrency and insufficient quota).
- Ids are ``video_`` plus the job id's 26 characters.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ...config import Settings
from ...core import assets, jobs, leases
from ...core.logs import request_id_var
from ...core.submission import InputRef, JobRequest
from ...db.models import Asset, Job
from ...errors import (BadRequest, ConcurrencyLimit, InsufficientCredits, NotFound,
                       RateLimited, ReelforgeError)
from ..deps import Caller, caller, runtime
from ..errors import register_formatter
from ..files import serve_artifact
from ..native import read_fields
from . import common

DIALECT = "openai"
PREFIX = "/openai"
SIZES = {"720x1280": ("9:16", "720p"), "1280x720": ("16:9", "720p"),
         "1024x1792": ("9:16", "1080p"), "1792x1024": ("16:9", "1080p")}
SECONDS = {"4": 5, "8": 10, "12": 10}  # requested → rendered (core duration 5 or 10)
EXTEND_SECONDS = ("4", "8", "12", "16", "20")
VARIANTS = {"video": "video", "thumbnail": "poster", "spritesheet": "spritesheet"}
STATUS = {"queued": "queued", "running": "in_progress", "succeeded": "completed",
          "failed": "failed", "cancelled": "failed"}
IMAGE_DATA_MAX = 20 * 1024 * 1024

router = APIRouter(prefix=PREFIX, tags=[DIALECT])


def video_id(job_id: str) -> str:
    return f"video_{common.job_suffix(job_id)}"


def _job_id(value: str) -> str | None:
    return common.job_from_prefixed(value, "video_")


def _bad(message: str, param: str, fix: str, code: str = "invalid_value") -> BadRequest:
    return BadRequest(message, fix=fix, code=code, field=param)


# ------------------------------------------------------------------ views

def video_view(job: Job) -> dict[str, Any]:
    meta = job.meta or {}
    code, message, _ = common.failure(job)
    return {"id": video_id(job.id), "object": "video", "model": meta.get("model", "sora-2"),
            "status": STATUS[job.status],
            "progress": 100 if job.status == "succeeded" else int(job.progress),
            "created_at": common.unix(job.created_at),
            "completed_at": common.unix(job.completed_at) if job.status == "succeeded" else None,
            "expires_at": common.unix(job.expires_at),
            "prompt": meta.get("prompt") or job.options.get("prompt") or None,
            "seconds": str(meta.get("seconds") or job.options.get("duration") or ""),
            "size": meta.get("size", "720x1280"),
            "remixed_from_video_id": meta.get("remixed_from_video_id"),
            "error": {"code": code, "message": message} if code else None}


def poll_after_ms(job: Job) -> int:
    if job.status == "running":
        eta = jobs.eta_seconds(job)
        return int(min(5000, max(250, (eta or 2.0) * 250)))
    return 1000


def _answer(job: Job, status: int = 200) -> JSONResponse:
    return JSONResponse(video_view(job), status_code=status,
                        headers={"openai-poll-after-ms": str(poll_after_ms(job))})


# ------------------------------------------------------------------ inputs

def _nested(fields: dict[str, Any], name: str) -> dict[str, Any]:
    """``name`` as an object: JSON ``{"name": {…}}`` or multipart ``name[key]`` fields."""
    value = fields.get(name)
    if isinstance(value, dict):
        return value
    prefix = f"{name}["
    return {k[len(prefix):-1]: v for k, v in fields.items()
            if k.startswith(prefix) and k.endswith("]")}


def _image_ref(fields: dict[str, Any], files: dict[str, Any], settings: Settings
               ) -> InputRef | None:
    uploads = files.get("input_reference") or []
    if uploads:
        return InputRef(stream=uploads[0].file)
    ref = _nested(fields, "input_reference")
    if ref.get("image_url"):
        return common.url_ref(ref["image_url"], "input_reference", settings, https_only=True,
                              data_max_bytes=IMAGE_DATA_MAX)
    if ref.get("file_id"):
        return InputRef(asset_id=str(ref["file_id"]))
    return None


def _prompt(fields: dict[str, Any]) -> str:
    prompt = fields.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise _bad("Missing required parameter: 'prompt'.", "prompt",
                   "Describe the video in prompt.", code="missing_required_parameter")
    return prompt


def _request(request: Request, mode: str, inputs: dict[str, Any], options: dict[str, Any],
             meta: dict[str, Any]) -> JobRequest:
    return JobRequest(mode=mode, inputs=inputs, options=options, dialect=DIALECT, meta=meta,
                      idempotency_key=request.headers.get("idempotency-key"),
                      request_id=request_id_var.get())


async def _submit(request: Request, who: Caller, req: JobRequest) -> JSONResponse:
    job, created = await common.submit(request, who.account, who.key.id, req)
    return _answer(job)


_MULTIPART = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["prompt"], "properties": {
        "prompt": {"type": "string"}, "model": {"type": "string"},
        "seconds": {"type": "string", "enum": list(SECONDS)},
        "size": {"type": "string", "enum": list(SIZES)},
        "input_reference": {"type": "string", "format": "binary"}}}},
    "application/json": {"schema": {"type": "object", "required": ["prompt"]}}}}}


@router.post("/v1/videos", openapi_extra=_MULTIPART, summary="Create a video")
async def create_video(request: Request, who: Caller = Depends(caller)) -> JSONResponse:
    rt = runtime(request)
    fields, files = await read_fields(request)
    prompt = _prompt(fields)
    size = str(fields.get("size") or "720x1280")
    if size not in SIZES:
        raise _bad(f"Invalid size {size!r}.", "size", f"Use one of: {', '.join(SIZES)}.")
    seconds = str(fields.get("seconds") or "4")
    if seconds not in SECONDS:
        raise _bad(f"seconds {seconds!r} is not available on this server.", "seconds",
                   "Use 4 (renders 5 s), 8 or 12 (both render 10 s, the longest clip "
                   "this server makes).")
    aspect, quality = SIZES[size]
    duration = SECONDS[seconds]
    if quality == "1080p" and duration != 5:
        raise _bad(f"size {size} is only available with seconds 4.", "size",
                   "Use seconds 4 with a large size, or 720x1280/1280x720 for 8 or 12 s.")
    image = _image_ref(fields, files, rt.settings)
    mode = "image_to_video" if image is not None else "text_to_video"
    model = str(fields.get("model") or "sora-2")
    req = _request(request, mode, {"image": image} if image else {},
                   {"prompt": prompt, "duration": duration, "aspect_ratio": aspect,
                    "quality": quality},
                   {"model": model, "size": size, "seconds": duration, "prompt": prompt})
    return await _submit(request, who, req)


def _load(rt: Any, account: Any, value: str) -> tuple[Job, int | None]:
    job, position = common.load_job(rt, account, _job_id(value), DIALECT, "video")
    if (job.meta or {}).get("deleted"):
        raise NotFound(f"Video {value} was deleted.", fix="List videos with GET /v1/videos.")
    return job, position


def _finished_source(rt: Any, account: Any, value: str) -> Job:
    job, _ = _load(rt, account, value)
    if job.status != "succeeded" or job.purged_at is not None:
        raise _bad(f"Video {value} is not completed (status {STATUS[job.status]}).", "video",
                   "Wait for status completed before building on it.")
    return job


async def _source_video(request: Request, who: Caller, fields: dict[str, Any],
                        files: dict[str, Any], mode: str, options: dict[str, Any]
                        ) -> tuple[InputRef, Job | None]:
    """The video to build on: an uploaded file, or ``{"id"}`` of a completed video."""
    rt = runtime(request)
    uploads = files.get("video") or []
    if uploads:
        return InputRef(stream=uploads[0].file), None
    ref = _nested(fields, "video")
    if not ref.get("id"):
        raise _bad("Missing required parameter: 'video'.", "video",
                   "Send video as {\"id\": \"video_…\"} or upload a file.",
                   code="missing_required_parameter")
    source = await run_in_threadpool(_finished_source, rt, who.account, str(ref["id"]))
    await run_in_threadpool(rt.submitter.quote, mode, options)  # refuse before copying
    asset = await run_in_threadpool(assets.asset_from_output, rt.db, rt.settings, rt.storage,
                                    who.account, source.id, "video")
    return InputRef(asset_id=asset.id), source


@router.post("/v1/videos/extensions", openapi_extra=_MULTIPART,
             summary="Extend a completed video")
async def extend_video(request: Request, who: Caller = Depends(caller)) -> JSONResponse:
    fields, files = await read_fields(request)
    prompt = _prompt(fields)
    seconds = str(fields.get("seconds") or "")
    if seconds not in EXTEND_SECONDS:
        raise _bad(f"Invalid seconds {seconds!r}.", "seconds",
                   f"Use one of: {', '.join(EXTEND_SECONDS)}.")
    options = {"prompt": prompt, "duration": int(seconds)}
    ref, source = await _source_video(request, who, fields, files, "extend", options)
    meta = {"model": (source.meta or {}).get("model", "sora-2") if source else "sora-2",
            "size": (source.meta or {}).get("size", "1280x720") if source else "1280x720",
            "prompt": prompt, "extended_from_video_id": video_id(source.id) if source else None,
            "seconds": (int((source.meta or {}).get("seconds") or 0) if source else 0)
            + int(seconds)}
    job, _ = await common.submit(request, who.account, who.key.id,
                                 _request(request, "extend", {"video": ref}, options, meta))
    if source is None:  # an uploaded video: the stitched total starts from its length
        job = await run_in_threadpool(_count_upload, runtime(request), job, int(seconds))
    return _answer(job)


def _count_upload(rt: Any, job: Job, seconds: int) -> Job:
    with rt.db.session() as s:
        asset = s.get(Asset, (job.inputs or {}).get("video"))
        length = float((asset.meta or {}).get("duration") or 0) if asset is not None else 0
    return common.update_meta(rt, job.id, seconds=round(length) + seconds)


@router.post("/v1/videos/edits", openapi_extra=_MULTIPART, summary="Edit a video")
async def edit_video(request: Request, who: Caller = Depends(caller)) -> JSONResponse:
    fields, files = await read_fields(request)
    prompt = _prompt(fields)
    options = {"prompt": prompt}
    ref, source = await _source_video(request, who, fields, files, "video_to_video", options)
    meta = {"model": (source.meta or {}).get("model", "sora-2") if source else "sora-2",
            "size": (source.meta or {}).get("size", "1280x720") if source else "1280x720",
            "seconds": (source.meta or {}).get("seconds") if source else None,
            "prompt": prompt}
    return await _submit(request, who, _request(request, "video_to_video", {"video": ref},
                                                options, meta))


@router.post("/v1/videos/{video}/remix", summary="Remix a completed video with a new prompt")
async def remix_video(video: str, request: Request,
                      who: Caller = Depends(caller)) -> JSONResponse:
    fields, _ = await read_fields(request)
    prompt = _prompt(fields)
    options = {"prompt": prompt}
    ref, source = await _source_video(request, who, {"video": {"id": video}}, {},
                                      "video_to_video", options)
    assert source is not None
    meta = {**{k: v for k, v in (source.meta or {}).items() if k in ("model", "size",
                                                                      "seconds")},
            "prompt": prompt, "remixed_from_video_id": video}
    return await _submit(request, who, _request(request, "video_to_video", {"video": ref},
                                                options, meta))


@router.get("/v1/videos", summary="List videos")
def list_videos(request: Request, after: str | None = None,
                limit: int = Query(20, ge=1, le=100),
                order: str = Query("desc", pattern="^(asc|desc)$"),
                who: Caller = Depends(caller)) -> dict[str, Any]:
    rt = runtime(request)
    cursor = None
    if after:
        cursor = _job_id(after)
        if cursor is None:
            raise _bad(f"Invalid 'after': {after!r}.", "after", "Pass a video id (video_…).")
    with rt.db.session() as s:
        rows, next_cursor = jobs.list_jobs(s, who.account, limit=limit, cursor=cursor,
                                           dialect=DIALECT, ascending=order == "asc",
                                           include_purged=False)
    data = [video_view(j) for j in rows]
    return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": next_cursor is not None}


@router.get("/v1/videos/{video}", summary="Retrieve a video (openai-poll-after-ms says when "
                                          "to ask again)")
def get_video(video: str, request: Request, who: Caller = Depends(caller)) -> JSONResponse:
    job, _ = _load(runtime(request), who.account, video)
    return _answer(job)


@router.delete("/v1/videos/{video}", summary="Delete a video and its stored assets")
def delete_video(video: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    rt = runtime(request)
    job, _ = _load(rt, who.account, video)
    with rt.db.session() as s:
        row = s.get(Job, job.id)
        if row.status in jobs.ACTIVE:
            try:
                jobs.cancel(s, rt.settings, row, allow_running=True)
            except ReelforgeError:  # it ended meanwhile
                pass
    rt.storage.delete_prefix(f"jobs/{job.id}/")
    leases.mark_purged(rt.db, job.id)
    common.update_meta(rt, job.id, deleted=True)
    return {"id": video, "object": "video.deleted", "deleted": True}


@router.get("/v1/videos/{video}/content", summary="Download the video, thumbnail or "
                                                  "spritesheet")
def download_content(video: str, request: Request,
                     variant: str = Query("video", description=", ".join(VARIANTS)),
                     who: Caller = Depends(caller)) -> Response:
    rt = runtime(request)
    if variant not in VARIANTS:
        raise _bad(f"Invalid variant {variant!r}.", "variant",
                   f"Use one of: {', '.join(VARIANTS)}.")
    job, _ = _load(rt, who.account, video)
    if job.status != "succeeded":
        raise NotFound(f"Video {video} is not completed (status {STATUS[job.status]}).",
                       fix="Poll GET /v1/videos/{id} until status is completed.",
                       code="video_not_ready")
    return serve_artifact(rt, job, VARIANTS[variant], request.headers.get("range"))


# ------------------------------------------------------------------ errors

def error_body(exc: ReelforgeError, request: Request) -> tuple[int, dict[str, Any]]:
    status, kind, code = exc.status, "invalid_request_error", exc.code
    if isinstance(exc, InsufficientCredits):
        status, kind, code = 429, "insufficient_quota", "insufficient_quota"
    elif isinstance(exc, (RateLimited, ConcurrencyLimit)):
        status, kind = 429, "requests"
        code = "rate_limit_exceeded" if isinstance(exc, RateLimited) else exc.code
    elif exc.status in (401,):
        code = {"invalid_key": "invalid_api_key", "revoked_key": "invalid_api_key",
                "missing_key": "missing_api_key"}.get(exc.code, exc.code)
    elif exc.status >= 500:
        kind = "server_error"
    elif exc.status in (415, 422, 451):
        status = 400
    param = exc.extra.get("field")
    if exc.code == "unsupported_mode" and request.url.path.endswith("/v1/videos"):
        param = "input_reference"
    message = f"{exc.message} {exc.fix}" if exc.fix else exc.message
    return status, {"error": {"message": message, "type": kind, "param": param, "code": code}}


register_formatter(PREFIX + "/", error_body)
