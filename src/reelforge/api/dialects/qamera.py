"""Qamera (seed 003) under ``/qamera``: videos from stored images, reels from 1–10.

A Qamera client changes only its base URL to ``<server>/qamera``.

- Auth: ``X-Api-Key``. Keys in Qamera's ``mk_live_<id>.<secret>`` format come from
  ``POST /qamera/api/external/api-keys`` (called with a key you have); any key of the
  account works.
- Image library (the seed leaves it out): ``POST /api/external/images`` takes a
  multipart ``file`` (or JSON ``{"url": …}``) and answers ``{"id": "img_…"}``; with
  ``generated=true`` the id is ``gimg_…``, for ``generatedImageId``. Both name the same
  stored image; ``GET /api/external/images/{id}`` shows one.
- ``POST /api/external/video-picker/register-videos``: exactly one of ``imageId`` and
  ``generatedImageId``, ``suggestion`` (the motion prompt), ``provider`` (default
  ``pollo``, recorded). ``POST /api/external/reel/register-reel``: ``imagesIds``, 1–10.
  Both answer ``createdRecordIds``, ``batchId``, ``orderId``, ``reservationId`` and
  ``creditsReserved``: credits are reserved at submit, consumed when the render
  succeeds and refunded when it fails (the core's ledger).
- ``GET /api/external/videos``: every video and reel, newest first, with status
  PENDING, PROCESSING, DONE, FAILED or CANCELLED and ``voting`` (PENDING until set
  with ``PATCH /api/external/videos/{id}`` ``{"voting": "APPROVED"|"REJECTED"}``).
  Record ids are ``vid_…``/``reel_…``; batch, order and reservation ids share the
  job's 26 characters.
- Correlation: every answer carries ``X-Correlation-Id`` and, in JSON bodies,
  ``correlationId``: the client's ``X-Correlation-Id`` when sent, else the request id.
  The id is on every log line of the request and is stored on the job.
- Errors: ``{"error", "code", "fix", "correlationId"}``; request problems are 400.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ...config import Settings
from ...core import assets, keys
from ...core.logs import request_id_var
from ...core.submission import InputRef, JobRequest
from ...db.models import Job
from ...errors import BadRequest, NotFound, ReelforgeError
from ..deps import Caller, caller, runtime
from ..errors import register_formatter
from ..native import read_fields
from . import common

DIALECT = "qamera"
PREFIX = "/qamera"
STATUS = {"queued": "PENDING", "running": "PROCESSING", "succeeded": "DONE",
          "failed": "FAILED", "cancelled": "CANCELLED"}
VOTES = ("PENDING", "APPROVED", "REJECTED")
_CID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

log = logging.getLogger("reelforge.qamera")


def correlation_id(request: Request) -> str:
    cid = getattr(request.state, "correlation_id", None)
    if cid is None:
        sent = request.headers.get("x-correlation-id", "")
        cid = sent if _CID.match(sent) else request_id_var.get()
        request.state.correlation_id = cid
    return cid


async def correlate(request: Request) -> None:
    """Every Qamera request: fix its correlation id and put it on every log line."""
    cid = correlation_id(request)
    if cid != request_id_var.get():
        log.info("%s %s correlationId=%s request=%s", request.method, request.url.path, cid,
                 request_id_var.get())
        request_id_var.set(cid)  # this request's task only


router = APIRouter(prefix=PREFIX, tags=[DIALECT], dependencies=[Depends(correlate)])


# ------------------------------------------------------------------ ids

def record_id(job: Job) -> str:
    kind = "reel" if job.mode == "reel" else "vid"
    return f"{kind}_{common.job_suffix(job.id)}"


def _job_from_record(value: str) -> str | None:
    return common.job_from_prefixed(value, "vid_") or common.job_from_prefixed(value, "reel_")


def image_id(asset_id: str, generated: bool = False) -> str:
    return f"{'gimg' if generated else 'img'}_{common.job_suffix(asset_id)}"


def _asset_from_image(value: Any, field: str, prefixes: tuple[str, ...]) -> str:
    if isinstance(value, str):
        for prefix in (*prefixes, "asset_"):
            if value.startswith(prefix):
                suffix = value[len(prefix):].lower()
                if common.job_from_suffix(suffix):
                    return f"asset_{suffix}"
    raise BadRequest(f"{field} {value!r} is not an image id.",
                     fix="Upload the image with POST /api/external/images and use the "
                         "returned id.", field=field)


# ------------------------------------------------------------------ images

@router.post("/api/external/images", status_code=201,
             summary="Upload an image to the library (multipart file, or {\"url\"})",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": {"schema": {"type": "object", "properties": {
                     "file": {"type": "string", "format": "binary"},
                     "generated": {"type": "boolean"}}}},
                 "application/json": {"schema": {"type": "object", "properties": {
                     "url": {"type": "string"}, "generated": {"type": "boolean"}}}}}}})
async def upload_image(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    rt = runtime(request)
    fields, files = await read_fields(request)
    uploads = files.get("file") or files.get("image") or []
    ref = InputRef(stream=uploads[0].file if uploads else None, url=fields.get("url"))
    if ref.stream is None and not ref.url:
        raise BadRequest("Send an image file (multipart field 'file') or {\"url\": …}.",
                         fix="curl -F file=@product.jpg …/api/external/images")
    asset = await run_in_threadpool(rt.submitter.ingest, who.account, ref, "image", "file")
    generated = str(fields.get("generated", "")).lower() in ("1", "true", "yes")
    return {**_image_view(asset, generated), "correlationId": correlation_id(request)}


def _image_view(asset: Any, generated: bool = False) -> dict[str, Any]:
    return {"id": image_id(asset.id, generated), "contentType": asset.content_type,
            "bytes": asset.bytes, "width": asset.meta.get("width"),
            "height": asset.meta.get("height"), "createdAt": common.iso(asset.created_at, True)}


@router.get("/api/external/images/{image}", summary="One library image")
def get_image(image: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    asset_id = _asset_from_image(image, "id", ("img_", "gimg_"))
    with runtime(request).db.session() as s:
        asset = assets.get_asset(s, who.account, asset_id)
    return {**_image_view(asset, image.startswith("gimg_")),
            "correlationId": correlation_id(request)}


# ------------------------------------------------------------------ register

class RegisterVideos(BaseModel):
    imageId: str | None = Field(None, description="A library image id (img_…)")  # noqa: N815
    generatedImageId: str | None = Field(None,  # noqa: N815
                                         description="A generated image id (gimg_…)")
    suggestion: str | None = Field(None, description="Creative direction / motion")
    provider: str | None = Field("pollo", description="Video provider (default pollo)")


class RegisterReel(BaseModel):
    imagesIds: list[str] = Field(description="1 to 10 image ids")  # noqa: N815


def _created(request: Request, job: Job) -> dict[str, Any]:
    suffix = common.job_suffix(job.id)
    return {"createdRecordIds": [record_id(job)], "batchId": f"batch_{suffix}",
            "orderId": f"order_{suffix}", "reservationId": f"res_{suffix}",
            "creditsReserved": job.cost, "correlationId": correlation_id(request)}


def _check_image(rt: Any, account: Any, asset_id: str, field: str) -> None:
    with rt.db.session() as s:
        try:
            asset = assets.get_asset(s, account, asset_id)
        except NotFound:
            raise BadRequest(f"{field}: no image {image_id(asset_id)} in your library.",
                             fix="Upload it with POST /api/external/images first.",
                             field=field) from None
    if asset.kind != "image":
        raise BadRequest(f"{field}: {image_id(asset_id)} is not an image.",
                         fix="Pass the id of an uploaded image.", field=field)


def _request(request: Request, mode: str, inputs: dict[str, Any], options: dict[str, Any],
             meta: dict[str, Any]) -> JobRequest:
    return JobRequest(mode=mode, inputs=inputs, options=options, dialect=DIALECT, meta=meta,
                      idempotency_key=request.headers.get("idempotency-key"),
                      request_id=correlation_id(request))


@router.post("/api/external/video-picker/register-videos",
             summary="Generate a video from a stored image (credits reserved now)")
async def register_videos(body: RegisterVideos, request: Request,
                          who: Caller = Depends(caller)) -> dict[str, Any]:
    rt = runtime(request)
    if bool(body.imageId) == bool(body.generatedImageId):
        raise BadRequest("Provide exactly one of imageId and generatedImageId.",
                         fix="Send imageId (img_…) or generatedImageId (gimg_…), not both.",
                         field="imageId")
    field = "imageId" if body.imageId else "generatedImageId"
    prefixes = ("img_",) if body.imageId else ("gimg_", "img_")
    asset_id = _asset_from_image(body.imageId or body.generatedImageId, field, prefixes)
    await run_in_threadpool(_check_image, rt, who.account, asset_id, field)
    provider = (body.provider or "pollo").strip()[:40]
    suggestion = body.suggestion or ""
    meta = {"kind": "video", field: body.imageId or body.generatedImageId,
            "provider": provider, "voting": "PENDING",
            "name": suggestion[:80] or f"Video from {body.imageId or body.generatedImageId}"}
    req = _request(request, "image_to_video", {"image": InputRef(asset_id=asset_id)},
                   {"prompt": suggestion}, meta)
    job, _ = await common.submit(request, who.account, who.key.id, req)
    return _created(request, job)


@router.post("/api/external/reel/register-reel",
             summary="Generate a reel from 1–10 stored images (credits reserved now)")
async def register_reel(body: RegisterReel, request: Request,
                        who: Caller = Depends(caller)) -> dict[str, Any]:
    rt = runtime(request)
    if not 1 <= len(body.imagesIds) <= 10:
        raise BadRequest(f"imagesIds must hold 1 to 10 image ids; got {len(body.imagesIds)}.",
                         fix="Send between 1 and 10 ids.", field="imagesIds")
    asset_ids = [_asset_from_image(v, "imagesIds", ("img_", "gimg_")) for v in body.imagesIds]
    for asset_id in dict.fromkeys(asset_ids):
        await run_in_threadpool(_check_image, rt, who.account, asset_id, "imagesIds")
    meta = {"kind": "reel", "imagesIds": body.imagesIds, "voting": "PENDING",
            "name": f"Reel ({len(body.imagesIds)} images)"}
    req = _request(request, "reel", {"images": [InputRef(asset_id=a) for a in asset_ids]},
                   {}, meta)
    job, _ = await common.submit(request, who.account, who.key.id, req)
    return _created(request, job)


# ------------------------------------------------------------------ videos

def video_view(job: Job, settings: Settings) -> dict[str, Any]:
    meta = job.meta or {}
    _, message, _ = common.failure(job)
    return {"id": record_id(job), "name": meta.get("name"),
            "type": "REEL" if job.mode == "reel" else "VIDEO",
            "thumbnail": common.signed_url(settings, job, "poster"),
            "videoUrl": common.signed_url(settings, job, "video"),
            "status": STATUS[job.status], "voting": meta.get("voting", "PENDING"),
            "creditsReserved": job.cost, "errorMessage": message,
            "createdAt": common.iso(job.created_at, ms=True)}


@router.get("/api/external/videos", summary="Your generated videos and reels (no credits used)")
def list_videos(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    rt = runtime(request)
    rows = common.all_jobs(rt, who.account, DIALECT)
    videos = [video_view(j, rt.settings) for j in rows]
    return {"videos": videos, "count": len(videos), "correlationId": correlation_id(request)}


class Vote(BaseModel):
    voting: Literal["PENDING", "APPROVED", "REJECTED"]


@router.patch("/api/external/videos/{record}", summary="Set a video's voting")
def vote(record: str, body: Vote, request: Request,
         who: Caller = Depends(caller)) -> dict[str, Any]:
    rt = runtime(request)
    job, _ = common.load_job(rt, who.account, _job_from_record(record), DIALECT, "video")
    job = common.update_meta(rt, job.id, voting=body.voting)
    return {**video_view(job, rt.settings), "correlationId": correlation_id(request)}


class KeyRequest(BaseModel):
    name: str = ""


@router.post("/api/external/api-keys", status_code=201,
             summary="Create an mk_live_<id>.<secret> key (shown once)")
def create_key(request: Request, body: KeyRequest | None = None,
               who: Caller = Depends(caller)) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        row, raw = keys.create_key(s, who.account, (body.name if body else "") or "qamera",
                                   style="qamera")
        return {"id": row.id, "name": row.name, "apiKey": raw,
                "createdAt": common.iso(row.created_at, ms=True),
                "correlationId": correlation_id(request)}


# ------------------------------------------------------------------ errors, headers

def error_body(exc: ReelforgeError, request: Request) -> tuple[int, dict[str, Any]]:
    status = 400 if exc.status in (415, 422, 451) else exc.status
    return status, {"error": exc.message, "code": exc.code, "fix": exc.fix,
                    "correlationId": correlation_id(request)}


def _headers(request: Request, response: Response) -> None:
    response.headers["X-Correlation-Id"] = correlation_id(request)


register_formatter(PREFIX + "/", error_body)
common.register_headers(PREFIX + "/", _headers)
