"""The native ``/v1`` API: jobs, assets, estimates, account, keys, webhooks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ..core import accounts, assets, jobs, keys, leases, webhooks
from ..core.logs import request_id_var
from ..core.submission import InputRef, JobRequest
from ..engines.base import ASPECT_RATIOS, MODES, QUALITIES, STYLES, TRANSFORM_STYLES
from ..errors import BadRequest, Conflict, Invalid
from ..runtime import Runtime
from .deps import Caller, caller, runtime
from .events import job_event_stream
from .files import serve_artifact

router = APIRouter(prefix="/v1", tags=["native"])

INPUT_NAMES = ("image", "audio", "video", "reference_image")
OPTION_NAMES = ("prompt", "style", "transform_style", "duration", "quality", "aspect_ratio",
                "fps", "seed", "watermark")  # documented in the multipart schema


class JobCreate(BaseModel):
    """JSON body of POST /v1/jobs. Multipart takes the same fields, files by input name."""

    mode: str = Field(description=f"One of: {', '.join(MODES)}")
    prompt: str | None = Field(None, description="Camera, speed and mood words steer the render")
    style: str | None = Field(None, description=f"One of: {', '.join(STYLES)}")
    transform_style: str | None = Field(None, description=", ".join(TRANSFORM_STYLES))
    duration: int | None = Field(None, description="5 or 10 seconds")
    quality: str | None = Field(None, description=" or ".join(QUALITIES) + "; 1080p only for 5 s")
    aspect_ratio: str | None = Field(None, description=", ".join(ASPECT_RATIOS))
    fps: int | None = Field(None, description="24 or 30")
    seed: int | None = None
    watermark: str | None = None
    webhook_url: str | None = Field(None, description="https URL notified when the job ends")
    image_url: str | None = None
    image_asset_id: str | None = None
    audio_url: str | None = None
    audio_asset_id: str | None = None
    video_url: str | None = None
    video_asset_id: str | None = None
    reference_image_url: str | None = None
    reference_image_asset_id: str | None = None
    images_urls: list[str] | None = Field(None, description="reel: 1–10 image URLs")
    images_asset_ids: list[str] | None = Field(None, description="reel: 1–10 image asset ids")


_BODY_DOC = {"requestBody": {"content": {
    "application/json": {"schema": JobCreate.model_json_schema()},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        **{n: {"type": "string", "format": "binary"} for n in INPUT_NAMES},
        "images": {"type": "array", "items": {"type": "string", "format": "binary"}},
        **{n: {"type": "string"} for n in ("mode",) + OPTION_NAMES + ("webhook_url",)}}}},
}, "required": True}}


async def read_fields(request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fields and uploaded files of a JSON or multipart body."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data") or ctype.startswith(
            "application/x-www-form-urlencoded"):
        form = await request.form(max_files=20, max_fields=100)
        fields: dict[str, Any] = {}
        files: dict[str, Any] = {}
        for name, value in form.multi_items():
            if hasattr(value, "read") and hasattr(value, "filename"):
                files.setdefault(name, []).append(value)
            else:
                fields[name] = value
        return fields, files
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("The body is not valid JSON.",
                         fix="Send JSON with Content-Type: application/json, or multipart "
                             "form data with the files.") from None
    if not isinstance(body, dict):
        raise BadRequest("The JSON body must be an object.", fix="Send {\"mode\": …, …}.")
    return body, {}


def job_request(fields: dict[str, Any], files: dict[str, Any], request: Request) -> JobRequest:
    mode = fields.get("mode")
    if not mode:
        raise Invalid("mode is required.", fix=f"Pass mode, one of: {', '.join(MODES)}.")
    inputs: dict[str, InputRef | list[InputRef]] = {}
    images = [InputRef(stream=u.file) for u in files.get("images", [])]
    images += [InputRef(url=u) for u in _as_list(fields.get("images_urls"))]
    images += [InputRef(asset_id=a) for a in _as_list(fields.get("images_asset_ids"))]
    if images:
        inputs["images"] = images
    for name in INPUT_NAMES:
        uploads = files.get(name) or []
        if len(uploads) > 1:
            raise Invalid(f"Input {name!r} was sent {len(uploads)} times.",
                          fix=f"Send one '{name}' file (reel images go in 'images').")
        upload = uploads[0] if uploads else None
        ref = InputRef(stream=upload.file if upload is not None else None,
                       url=fields.get(f"{name}_url"), asset_id=fields.get(f"{name}_asset_id"))
        if sum(x is not None for x in (ref.stream, ref.url, ref.asset_id)) > 1:
            raise Invalid(f"Input {name!r} was given more than once.",
                          fix=f"Send one of: a '{name}' file, '{name}_url' or "
                              f"'{name}_asset_id'.")
        if ref.stream or ref.url or ref.asset_id:
            inputs[name] = ref
    opts = dict(fields.get("options") or {})
    not_options = {"mode", "webhook_url", "options", "images_urls", "images_asset_ids",
                   *(f"{n}{suffix}" for n in INPUT_NAMES for suffix in ("_url", "_asset_id"))}
    opts.update({k: v for k, v in fields.items()
                 if k not in not_options and v not in (None, "")})
    return JobRequest(mode=str(mode), inputs=inputs, options=opts,
                      webhook_url=fields.get("webhook_url") or None,
                      idempotency_key=request.headers.get("idempotency-key"),
                      request_id=request_id_var.get())


def _as_list(value: Any) -> list[str]:
    """A JSON list, or a comma-separated form field."""
    if value in (None, ""):
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def render_job(rt: Runtime, job_id: str) -> dict[str, Any]:
    with rt.db.session() as s:
        job = s.get(jobs.Job, job_id)
        position = jobs.queue_position(s, job)
    return jobs.job_view(job, rt.settings, position)


@router.post("/jobs", status_code=201, openapi_extra=_BODY_DOC,
             summary="Submit a job (JSON with URLs/asset ids, or multipart with files)")
async def create_job(request: Request, who: Caller = Depends(caller)) -> JSONResponse:
    rt = runtime(request)
    fields, files = await read_fields(request)
    req = job_request(fields, files, request)
    job, created = await run_in_threadpool(rt.submitter.submit, who.account, who.key.id, req)
    body = await run_in_threadpool(render_job, rt, job.id)
    request.state.credits = await run_in_threadpool(_balance, rt, who.account.id)
    return JSONResponse(body, status_code=201 if created else 200,
                        headers={"Location": f"/v1/jobs/{job.id}"})


def _balance(rt: Runtime, account_id: str) -> int:
    with rt.db.session() as s:
        return accounts.get_account(s, account_id).balance


@router.post("/estimate", summary="Price a job without submitting it")
async def estimate(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    rt = runtime(request)
    fields, _ = await read_fields(request)
    req = job_request(fields, {}, request)
    quote = rt.submitter.quote(req.mode, req.options)
    return {"mode": quote.mode, "engine": quote.engine, "output_seconds": quote.output_seconds,
            "cost": quote.cost, "options": quote.options, "balance": who.account.balance,
            "affordable": who.account.balance >= quote.cost}


@router.get("/jobs", summary="List jobs, newest first")
def list_jobs(request: Request, who: Caller = Depends(caller),
              limit: int = Query(20, ge=1, le=100), cursor: str | None = None,
              status: str | None = None) -> dict[str, Any]:
    rt = runtime(request)
    with rt.db.session() as s:
        rows, next_cursor = jobs.list_jobs(s, who.account, limit=limit, cursor=cursor,
                                           status=status)
        data = [jobs.job_view(j, rt.settings, jobs.queue_position(s, j)) for j in rows]
    return {"object": "list", "data": data, "next_cursor": next_cursor,
            "has_more": next_cursor is not None}


@router.get("/jobs/{job_id}", summary="One job")
def get_job(job_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    rt = runtime(request)
    with rt.db.session() as s:
        job = jobs.get_job(s, who.account, job_id)
        return jobs.job_view(job, rt.settings, jobs.queue_position(s, job))


@router.post("/jobs/{job_id}/cancel", summary="Cancel a queued job (409 once it runs)")
def cancel_job(job_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    rt = runtime(request)
    with rt.db.session() as s:
        job = jobs.cancel(s, rt.settings, jobs.get_job(s, who.account, job_id))
        request.state.credits = accounts.get_account(s, who.account.id).balance
        return jobs.job_view(job, rt.settings)


@router.delete("/jobs/{job_id}", summary="Delete a finished job's outputs")
def delete_job(job_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    rt = runtime(request)
    with rt.db.session() as s:
        job = jobs.get_job(s, who.account, job_id)
        if job.status in jobs.ACTIVE:
            raise Conflict(f"Job {job.id} is {job.status}.", code="job_active",
                                fix="Cancel it (if queued) or wait for it to end, then delete.")
    removed = rt.storage.delete_prefix(f"jobs/{job_id}/")
    leases.mark_purged(rt.db, job_id)
    return {"id": job_id, "object": "job", "deleted": True, "files_removed": removed}


@router.get("/jobs/{job_id}/artifacts/{name}", summary="Download an output (Range supported)")
def get_artifact(job_id: str, name: str, request: Request,
                 who: Caller = Depends(caller)) -> Response:
    rt = runtime(request)
    with rt.db.session() as s:
        job = jobs.get_job(s, who.account, job_id)
    return serve_artifact(rt, job, name, request.headers.get("range"))


@router.get("/jobs/{job_id}/events", summary="Server-Sent Events: status and progress")
async def job_events(job_id: str, request: Request,
                     who: Caller = Depends(caller)) -> StreamingResponse:
    rt = runtime(request)

    def check() -> None:
        with rt.db.session() as s:
            jobs.get_job(s, who.account, job_id)

    await run_in_threadpool(check)
    return StreamingResponse(job_event_stream(rt, job_id, request), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.post("/assets", status_code=201, summary="Upload an input (file or {\"url\": …})")
async def create_asset(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    rt = runtime(request)
    fields, files = await read_fields(request)
    uploads = files.get("file") or next(iter(files.values()), [])
    upload = uploads[0] if uploads else None
    ref = InputRef(stream=upload.file if upload is not None else None, url=fields.get("url"))
    if ref.stream is None and not ref.url:
        raise Invalid("Send a file (multipart field 'file') or a JSON body {\"url\": …}.",
                      fix="e.g. curl -F file=@photo.jpg …/v1/assets")
    asset = await run_in_threadpool(rt.submitter.ingest, who.account, ref, None)
    return assets.asset_view(asset)


@router.get("/assets/{asset_id}", summary="One asset")
def get_asset(asset_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        return assets.asset_view(assets.get_asset(s, who.account, asset_id))


@router.get("/engines", summary="Engines, their modes, options and prompt vocabulary")
def list_engines(request: Request) -> dict[str, Any]:
    rt = runtime(request)
    data = []
    for engine in rt.engines.values():
        cap = engine.capabilities()
        data.append({"name": cap.engine, "modes": list(cap.modes),
                     "description": cap.description, "options": cap.options})
    return {"object": "list", "data": data}


@router.get("/account", summary="Plan, balance, held credits and usage")
def get_account(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    rt = runtime(request)
    with rt.db.session() as s:
        account = accounts.get_account(s, who.account.id)
        plan = rt.settings.plan(account.plan)
        return {"id": account.id, "name": account.name, "plan": account.plan,
                "limits": plan.model_dump(), "balance": account.balance, "held": account.held,
                "usage": accounts.usage(s, account)}


@router.get("/account/webhook-secret", summary="The secret that signs your webhooks")
def webhook_secret(request: Request, who: Caller = Depends(caller)) -> dict[str, str]:
    return {"secret": who.account.webhook_secret}


@router.post("/account/webhook-secret/rotate", summary="Replace the webhook signing secret")
def rotate_secret(request: Request, who: Caller = Depends(caller)) -> dict[str, str]:
    with runtime(request).db.session() as s:
        account = accounts.get_account(s, who.account.id)
        return {"secret": accounts.rotate_webhook_secret(s, account)}


class KeyCreate(BaseModel):
    name: str = ""
    format: str = Field("reelforge", description="reelforge (rf_live_…), dockora (dk_…), "
                                                 "clipora (ck_live_…) or qamera (mk_live_….…)")


def _key_view(k: keys.ApiKey) -> dict[str, Any]:
    return {"id": k.id, "object": "api_key", "name": k.name, "prefix": k.prefix,
            "created_at": k.created_at.isoformat(),
            "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
            "revoked": k.revoked_at is not None}


@router.get("/keys", summary="List API keys (secrets are never shown again)")
def list_keys(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        return {"object": "list", "data": [_key_view(k) for k in keys.list_keys(s, who.account)]}


@router.post("/keys", status_code=201, summary="Create an API key; the key is shown once")
def create_key(body: KeyCreate, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        row, raw = keys.create_key(s, who.account, body.name, body.format)
        return {**_key_view(row), "key": raw}


@router.delete("/keys/{key_id}", summary="Revoke an API key, effective immediately")
def revoke_key(key_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        return _key_view(keys.revoke_key(s, who.account, key_id))


@router.get("/webhooks/deliveries", summary="Webhook events and each delivery attempt")
def list_deliveries(request: Request, who: Caller = Depends(caller),
                    job_id: str | None = None,
                    limit: int = Query(50, ge=1, le=200)) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        rows = webhooks.list_events(s, who.account, limit, job_id)
        return {"object": "list", "data": [{
            "id": e.id, "job_id": e.job_id, "type": e.event_type, "url": e.url,
            "status": e.status, "attempts": e.attempts,
            "next_attempt_at": e.next_attempt_at.isoformat() if e.next_attempt_at else None,
            "deliveries": [{"attempt": d.attempt, "status_code": d.status_code,
                            "error": d.error, "duration_ms": d.duration_ms,
                            "at": d.created_at.isoformat()} for d in ds]}
            for e, ds in rows]}


@router.post("/webhooks/deliveries/{event_id}/redeliver", summary="Send an event again")
def redeliver(event_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        event = webhooks.redeliver(s, who.account, event_id)
        return {"id": event.id, "status": event.status}
