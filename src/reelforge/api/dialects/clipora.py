"""Clipora (seed 002) under ``/clipora``: long video in, captioned 9:16 clips out.

A Clipora client changes only its base URL to ``<server>/clipora/api`` (the seed's
base is ``https://your-host/api``); the WebSocket is ``<server>/clipora/ws?jobId=…``.

- Auth: ``X-API-Key`` or ``Authorization: Bearer`` (a key that is wrong or revoked is
  401 at once, with no fallback to the cookie), else the ``reels_session`` cookie.
  Public: ``GET /api/billing/plans`` and ``/api/auth/signup`` / ``/api/auth/login``.
- Sessions: signup and login set an httpOnly ``reels_session`` cookie (a signed token,
  see ``core/sessions.py``); ``POST /api/auth/logout`` clears it; ``GET /api/auth/me``.
- Keys: ``GET``/``POST /api/keys``, ``DELETE /api/keys/{id}``, session only (an API key
  gets 403: keys cannot manage keys). New keys are ``ck_live_…`` with a 256-bit secret,
  shown once, stored as SHA-256; at most 10 active. Billing checkout and portal are
  session only too (and answer 503 here: no payment provider is configured).
- Jobs: ``POST /api/upload`` (multipart ``video`` + ``options`` JSON), ``POST
  /api/upload/url`` (``{"url", "options"}``), ``GET /api/jobs``, ``GET /api/jobs/{id}``;
  statuses queued, downloading, processing, completed, failed.
- Clips: ``GET /api/clips/{jobId}`` (the manifest; 404 until completed) and ``GET
  /api/clips/{jobId}/{filename}`` for ``clip_NN.mp4|jpg|ass`` and ``manifest.json``,
  with long-lived cache headers. Everything is scoped to the account: another
  account's job is 403.
- Errors: ``{"error": …}`` (plus ``fix``); 400 for bad requests, 503 when no engine can
  make clips ("pipeline unavailable").

ProcessOptions are validated here with Clipora's names and passed to the core in its
snake_case names: ``clip_mode`` (ai|none), ``num_clips``, ``clip_length``,
``aspect_ratio``, ``caption_preset``, ``remove_ai_voice``, ``auto_hook``, ``prompt``,
``genre``, ``trim_start``, ``trim_end``.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketState

from ...config import Settings
from ...core import fetch, keys, sessions
from ...core.logs import request_id_var
from ...core.submission import InputRef, JobRequest
from ...db.models import Account, ApiKey, Asset, Job
from ...errors import (BadRequest, Forbidden, NotFound, ReelforgeError, Unauthorized,
                       Unavailable, UnsupportedMode)
from ..deps import authenticate, presented_key, runtime
from ..errors import backend_unavailable, register_formatter
from ..events import watch_job
from ..files import serve_artifact
from ..native import read_fields
from . import common

DIALECT = "clipora"
PREFIX = "/clipora"
COOKIE = "reels_session"
FILENAME = re.compile(r"^(clip_\d{2}\.(mp4|jpg|ass)|manifest\.json)$")
CACHE = "private, max-age=31536000, immutable"

router = APIRouter(prefix=PREFIX, tags=[DIALECT])


def public_id(job_id: str) -> str:
    return common.job_suffix(job_id)


# ------------------------------------------------------------------ auth

@dataclass
class Who:
    account: Account
    key: ApiKey | None  # None: a browser session

    @property
    def via_session(self) -> bool:
        return self.key is None


def _session_account(request: HTTPConnection) -> Account | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    rt = runtime(request)
    with rt.db.session() as s:
        return sessions.account_for_token(s, rt.settings, token)


def resolve(request: HTTPConnection) -> Who:
    """An API key when one is sent (wrong → 401, no fallback), else the cookie."""
    if presented_key(request):
        who = authenticate(request)
        return Who(who.account, who.key)
    account = _session_account(request)
    if account is None:
        raise Unauthorized("Not authenticated.", code="not_authenticated",
                           fix="Send X-API-Key: ck_live_… (or Authorization: Bearer), or "
                               "log in to get the reels_session cookie.")
    rt = runtime(request)
    request.state.credits = account.balance
    try:
        request.state.rate = rt.limiter.hit(f"session:{account.id}",
                                            rt.settings.plan(account.plan))
    except Exception as exc:
        down = backend_unavailable(exc)
        if down is None:
            raise
        raise down from exc
    return Who(account, None)


def session_only(request: Request) -> Who:
    who = resolve(request)
    if not who.via_session:
        raise Forbidden("API keys cannot manage keys or billing.", code="session_only",
                        fix="Sign in (POST /api/auth/login) and use the reels_session cookie.")
    return who


class Credentials(BaseModel):
    email: str
    password: str


def _user(account: Account) -> dict[str, Any]:
    return {"id": account.id, "email": account.email, "plan": account.plan,
            "credits": account.balance}


def _with_cookie(settings: Settings, account: Account, status: int) -> JSONResponse:
    response = JSONResponse({"user": _user(account)}, status_code=status)
    response.set_cookie(COOKIE, sessions.make_token(settings, account),
                        max_age=sessions.SESSION_TTL_S, httponly=True, samesite="lax",
                        secure=settings.public_base_url.startswith("https://"), path="/")
    return response


@router.post("/api/auth/signup", status_code=201, summary="Create an account; sets the cookie")
def signup(body: Credentials, request: Request) -> JSONResponse:
    rt = runtime(request)
    with rt.db.session() as s:
        account = sessions.signup(s, rt.settings, body.email, body.password)
    return _with_cookie(rt.settings, account, 201)


@router.post("/api/auth/login", summary="Log in; sets the httpOnly reels_session cookie")
def login(body: Credentials, request: Request) -> JSONResponse:
    rt = runtime(request)
    with rt.db.session() as s:
        account = sessions.login(s, body.email, body.password)
    return _with_cookie(rt.settings, account, 200)


@router.post("/api/auth/logout", summary="Clear the session cookie")
def logout() -> JSONResponse:
    response = JSONResponse({"ok": True})
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/api/auth/me", summary="The signed-in account")
def me(who: Who = Depends(resolve)) -> dict[str, Any]:
    return {"user": _user(who.account), "auth": "session" if who.via_session else "api_key"}


# ------------------------------------------------------------------ keys, billing

def _key_view(row: ApiKey) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "prefix": row.prefix,
            "createdAt": common.iso(row.created_at),
            "lastUsedAt": common.iso(row.last_used_at), "revoked": row.revoked_at is not None}


class KeyCreate(BaseModel):
    name: str = ""


@router.get("/api/keys", summary="List API keys (session only)")
def list_keys(request: Request, who: Who = Depends(session_only)) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        return {"keys": [_key_view(k) for k in keys.list_keys(s, who.account)]}


@router.post("/api/keys", status_code=201,
             summary="Create a ck_live_ key; the plaintext is shown once (session only)")
def create_key(request: Request, body: KeyCreate | None = None,
               who: Who = Depends(session_only)) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        row, raw = keys.create_key(s, who.account, body.name if body else "", style="clipora")
        return {**_key_view(row), "key": raw}


@router.delete("/api/keys/{key_id}", summary="Revoke an API key (session only)")
def revoke_key(key_id: str, request: Request,
               who: Who = Depends(session_only)) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        return _key_view(keys.revoke_key(s, who.account, key_id))


@router.get("/api/billing/plans", summary="Plans and their limits (public)")
def plans(request: Request) -> dict[str, Any]:
    settings = runtime(request).settings
    return {"plans": [{"id": name, "name": name.title(), "monthlyCredits": p.monthly_credits,
                       "requestsPerMinute": p.requests_per_minute,
                       "requestsPerDay": p.requests_per_day,
                       "concurrentJobs": p.concurrent_jobs, "webhooks": p.webhooks,
                       "maxOutputSeconds": p.max_output_seconds}
                      for name, p in settings.plans.items()]}


def _no_billing() -> None:
    raise Unavailable("Billing is not configured on this server.", code="billing_unavailable",
                      fix="Ask the operator to change your plan (reelforge accounts).")


@router.post("/api/billing/checkout", summary="Start a plan checkout (session only)")
def checkout(who: Who = Depends(session_only)) -> None:
    _no_billing()


@router.post("/api/billing/portal", summary="Open the billing portal (session only)")
def portal(who: Who = Depends(session_only)) -> None:
    _no_billing()


# ------------------------------------------------------------------ options

CLIP_MODES = ("ai", "none")
CLIP_LENGTHS = ("short", "medium", "long")
ASPECTS = ("9:16", "1:1", "4:5", "16:9")
PRESETS = ("none", "beasty", "karaoke", "mozi")
GENRES = ("auto", "podcast", "interview", "vlog", "tutorial")
DEFAULTS: dict[str, Any] = {"mode": "ai", "numClips": 3, "clipLength": "medium",
                            "aspectRatio": "9:16", "captionPreset": "none",
                            "removeAiVoice": True, "autoHook": True, "prompt": "",
                            "genre": "auto", "trimStart": 0, "trimEnd": None}
NATIVE_NAMES = {"mode": "clip_mode", "numClips": "num_clips", "clipLength": "clip_length",
                "aspectRatio": "aspect_ratio", "captionPreset": "caption_preset",
                "removeAiVoice": "remove_ai_voice", "autoHook": "auto_hook",
                "prompt": "prompt", "genre": "genre", "trimStart": "trim_start",
                "trimEnd": "trim_end"}


def _bad(name: str, fix: str) -> BadRequest:
    return BadRequest(f"options.{name} is invalid.", fix=fix, field=name)


def process_options(raw: Any) -> dict[str, Any]:
    """ProcessOptions with Clipora's names and defaults, checked."""
    if raw in (None, ""):
        raw = {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise BadRequest("options must be a JSON object.",
                             fix='e.g. -F \'options={"numClips":3}\'') from None
    if not isinstance(raw, dict):
        raise BadRequest("options must be a JSON object.", fix='e.g. {"numClips": 3}')
    out = dict(DEFAULTS)
    out.update({k: v for k, v in raw.items() if k in DEFAULTS and v is not None})
    for name, allowed in (("mode", CLIP_MODES), ("clipLength", CLIP_LENGTHS),
                          ("aspectRatio", ASPECTS), ("captionPreset", PRESETS),
                          ("genre", GENRES)):
        if out[name] not in allowed:
            raise _bad(name, f"Use one of: {', '.join(allowed)}.")
    if isinstance(out["numClips"], bool) or not isinstance(out["numClips"], int) \
            or not 1 <= out["numClips"] <= 10:
        raise _bad("numClips", "Use a whole number from 1 to 10.")
    for name in ("removeAiVoice", "autoHook"):
        if not isinstance(out[name], bool):
            raise _bad(name, "Use true or false.")
    if not isinstance(out["prompt"], str) or len(out["prompt"]) > 2000:
        raise _bad("prompt", "Use text of at most 2000 characters.")
    for name in ("trimStart", "trimEnd"):
        value = out[name]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or value < 0):
            raise _bad(name, "Use a number of seconds, 0 or more.")
    if out["trimEnd"] is not None and out["trimEnd"] <= out["trimStart"]:
        raise _bad("trimEnd", "trimEnd must be after trimStart.")
    return out


def _native_options(opts: dict[str, Any]) -> dict[str, Any]:
    return {NATIVE_NAMES[k]: v for k, v in opts.items() if v is not None}


# ------------------------------------------------------------------ jobs

def _job_status(status: str, stage: str) -> str:
    if status == "running":
        return "downloading" if stage in ("starting", "downloading") else "processing"
    return {"queued": "queued", "succeeded": "completed"}.get(status, "failed")


def _find_output(job: Job, filename: str) -> str | None:
    outputs = job.outputs or {}
    for name, facts in outputs.items():
        if facts.get("filename") == filename or name == filename:
            return name
    stem, _, ext = filename.rpartition(".")
    for name, facts in outputs.items():
        if name == stem and str(facts.get("filename", "")).endswith("." + ext):
            return name
    return None


def _clip_files(job: Job) -> list[str]:
    found = []
    for index in range(1, 100):
        if _find_output(job, f"clip_{index:02d}.mp4") is None:
            break
        found.append(f"clip_{index:02d}")
    return found


def _url(job: Job, filename: str) -> str:
    return f"{PREFIX}/api/clips/{public_id(job.id)}/{filename}"


def job_view(job: Job, source_bytes: int | None = None) -> dict[str, Any]:
    meta = job.meta or {}
    clips = _clip_files(job) if job.status == "succeeded" else []
    poster = (_url(job, f"{clips[0]}.jpg") if clips and _find_output(job, f"{clips[0]}.jpg")
              else None)
    _, message, fix = common.failure(job)
    out = {"id": public_id(job.id), "originalName": meta.get("originalName"),
           "sizeBytes": source_bytes if source_bytes is not None else meta.get("sizeBytes"),
           "status": _job_status(job.status, job.stage), "stage": job.stage,
           "progress": 100 if job.status == "succeeded" else int(job.progress),
           "createdAt": int(job.created_at.timestamp() * 1000),
           "updatedAt": int(job.updated_at.timestamp() * 1000),
           "clipCount": len(clips), "posterUrl": poster,
           "wsUrl": f"{PREFIX}/ws?jobId={public_id(job.id)}",
           "options": meta.get("options"), "error": message}
    if fix:
        out["fix"] = fix
    if meta.get("sourceUrl"):
        out["sourceUrl"] = meta["sourceUrl"]
    return out


def _source_bytes(rt: Any, job: Job) -> int | None:
    asset_id = (job.inputs or {}).get("video")
    if not isinstance(asset_id, str):
        return None
    with rt.db.session() as s:
        asset = s.get(Asset, asset_id)
        return asset.bytes if asset is not None else None


def _owned(rt: Any, account: Account, public: str) -> Job:
    job_id = common.job_from_suffix(public)
    with rt.db.session() as s:
        job = s.get(Job, job_id) if job_id else None
    if job is None or job.dialect != DIALECT:
        raise NotFound(f"Job {public!r} not found.", fix="List your jobs with GET /api/jobs.")
    if job.account_id != account.id:
        raise Forbidden("This job belongs to another account.", code="not_yours",
                        fix="Use a key or session of the account that made it.")
    return job


async def _submit(request: Request, who: Who, ref: InputRef | None, opts: dict[str, Any],
                  meta: dict[str, Any], source_url: str | None = None) -> JSONResponse:
    """Queue a clips job: an uploaded video, or a link the job downloads itself."""
    rt = runtime(request)
    meta = {**meta, "options": opts}
    native = _native_options(opts)
    if source_url:
        native["source_url"] = source_url
    req = JobRequest(mode="clips", inputs={"video": ref} if ref else {}, options=native,
                     idempotency_key=request.headers.get("idempotency-key"), dialect=DIALECT,
                     meta=meta, request_id=request_id_var.get())
    job, _ = await common.submit(request, who.account, who.key.id if who.key else None, req)
    size = await run_in_threadpool(_source_bytes, rt, job)
    if size is not None and meta.get("sizeBytes") is None:
        job = await run_in_threadpool(common.update_meta, rt, job.id, sizeBytes=size)
    return JSONResponse({"jobId": public_id(job.id), "originalName": meta.get("originalName"),
                         "sizeBytes": size, "wsUrl": f"{PREFIX}/ws?jobId={public_id(job.id)}",
                         "options": opts})


@router.post("/api/upload", summary="Upload a video (multipart: video + options JSON)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": {"schema": {"type": "object", "required": ["video"],
                                                    "properties": {
                     "video": {"type": "string", "format": "binary"},
                     "options": {"type": "string", "description": "ProcessOptions JSON"}}}}}}})
async def upload(request: Request) -> JSONResponse:
    who = await run_in_threadpool(resolve, request)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise BadRequest("video file required", fix="Send multipart/form-data with a 'video' "
                                                    "file field.")
    fields, files = await read_fields(request)
    videos = files.get("video") or []
    if not videos:
        raise BadRequest("video file required",
                         fix="curl -F video=@/path/to/video.mp4 -F 'options={…}' …/api/upload")
    opts = process_options(fields.get("options"))
    name = PurePosixPath(videos[0].filename or "upload.mp4").name
    return await _submit(request, who, InputRef(stream=videos[0].file), opts,
                         {"originalName": name, "sizeBytes": videos[0].size})


class UrlUpload(BaseModel):
    url: str
    options: dict[str, Any] | None = None


@router.post("/api/upload/url", summary="Submit a video by URL")
async def upload_url(body: UrlUpload, request: Request) -> JSONResponse:
    who = await run_in_threadpool(resolve, request)
    opts = process_options(body.options)
    if not body.url.lower().startswith(("http://", "https://")):
        raise BadRequest("url must be a public http(s) URL.", fix="Send {\"url\": \"https://…\"}.")
    rt = runtime(request)
    # refuse private addresses now; the download itself happens in the job's
    # `downloading` stage (direct links through the same guard, site links via yt-dlp)
    fetch.check_url(body.url, trusted=rt.settings.trusted_networks)
    name = PurePosixPath(urlsplit(body.url).path).name or urlsplit(body.url).hostname
    return await _submit(request, who, None, opts,
                         {"originalName": name, "sourceUrl": body.url}, source_url=body.url)


@router.get("/api/jobs", summary="Your jobs, newest first")
def list_jobs(request: Request, who: Who = Depends(resolve)) -> dict[str, Any]:
    rt = runtime(request)
    rows = common.all_jobs(rt, who.account, DIALECT)
    return {"jobs": [job_view(j) for j in rows]}


@router.get("/api/jobs/{job_id}", summary="One job's status and metadata")
def get_job(job_id: str, request: Request, who: Who = Depends(resolve)) -> dict[str, Any]:
    return job_view(_owned(runtime(request), who.account, job_id))


def _read_output(rt: Any, job: Job, name: str) -> bytes:
    key = job.outputs[name]["key"]
    return b"".join(rt.storage.open_range(key, 0, None))


def manifest(rt: Any, job: Job) -> dict[str, Any]:
    """The clips manifest, with URLs under this server's /clipora prefix."""
    name = _find_output(job, "manifest.json")
    data: dict[str, Any] = {}
    if name is not None:
        try:
            data = json.loads(_read_output(rt, job, name))
        except (ValueError, FileNotFoundError):
            data = {}
    clips = list(data.get("clips") or [])
    if not clips:
        clips = [{"index": i + 1} for i in range(len(_clip_files(job)))]
    for position, clip in enumerate(clips, start=1):
        index = int(clip.get("index") or position)
        clip["index"] = index
        clip["downloadUrl"] = _url(job, f"clip_{index:02d}.mp4")
        clip["posterUrl"] = (_url(job, f"clip_{index:02d}.jpg")
                             if _find_output(job, f"clip_{index:02d}.jpg") else None)
        clip.setdefault("aspectRatio", (job.meta or {}).get("options", {}).get("aspectRatio"))
    return {**data, "jobId": public_id(job.id), "duration": data.get("duration"),
            "clipCount": len(clips), "clips": clips}


@router.get("/api/clips/{job_id}", summary="The clips manifest (404 until completed)")
def get_clips(job_id: str, request: Request, who: Who = Depends(resolve)) -> dict[str, Any]:
    rt = runtime(request)
    job = _owned(rt, who.account, job_id)
    if job.status != "succeeded" or job.purged_at is not None:
        raise NotFound(f"Clips for job {job_id} are not ready (status "
                       f"{_job_status(job.status, job.stage)}).",
                       fix="Poll GET /api/jobs/{jobId} until status is completed.")
    return manifest(rt, job)


@router.get("/api/clips/{job_id}/{filename}",
            summary="A clip, poster, caption track or manifest.json (cached long)")
def get_clip_file(job_id: str, filename: str, request: Request,
                  who: Who = Depends(resolve)) -> Response:
    rt = runtime(request)
    if not FILENAME.match(filename):
        raise BadRequest(f"{filename!r} is not an allowed filename.",
                         fix="Use clip_NN.mp4, clip_NN.jpg, clip_NN.ass or manifest.json.")
    job = _owned(rt, who.account, job_id)
    if job.status != "succeeded":
        raise NotFound(f"Job {job_id} is not completed yet.",
                       fix="Poll GET /api/jobs/{jobId} until status is completed.")
    if filename == "manifest.json":
        return JSONResponse(manifest(rt, job), headers={"Cache-Control": CACHE})
    name = _find_output(job, filename)
    if name is None:
        raise NotFound(f"Job {job_id} has no file {filename!r}.",
                       fix="Take the file names from GET /api/clips/{jobId}.")
    response = serve_artifact(rt, job, name, request.headers.get("range"))
    response.headers["Cache-Control"] = CACHE
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


# ------------------------------------------------------------------ live progress

@router.get("/ws", status_code=426, summary="WebSocket: live progress of one job",
            description="Connect with a WebSocket to `/clipora/ws?jobId=…`, authenticated "
                        "like the REST API (X-API-Key or the reels_session cookie). Each "
                        "message is JSON: `{type: progress|completed|failed, jobId, status, "
                        "stage, progress, error}`; the socket closes after the last one. "
                        "Refusals arrive as `{type: error, error}` then close codes 4401 "
                        "(not authenticated), 4403 (not your job) or 4404 (no such job).")
def ws_doc() -> JSONResponse:
    return JSONResponse({"error": "Upgrade to a WebSocket to follow a job."}, status_code=426,
                        headers={"Upgrade": "websocket"})


class _Probe:
    """What ``watch_job`` asks of a request: has the client gone?"""

    def __init__(self, closed: asyncio.Event) -> None:
        self.closed = closed

    async def is_disconnected(self) -> bool:
        return self.closed.is_set()


def _ws_message(public: str, view: dict[str, Any]) -> dict[str, Any]:
    status = _job_status(view["status"], view["stage"])
    kind = {"completed": "completed", "failed": "failed"}.get(status, "progress")
    error = (view.get("error") or {}).get("message") if view["status"] == "failed" else None
    if view["status"] == "cancelled":
        error = "The job was cancelled."
    return {"type": kind, "jobId": public, "status": status, "stage": view["stage"],
            "progress": 100 if status == "completed" else int(view["progress"] or 0),
            "error": error}


@router.websocket("/ws")
async def ws(websocket: WebSocket, jobId: str = "") -> None:  # noqa: N803 - the seed's name
    rt = websocket.app.state.runtime
    await websocket.accept()
    try:
        who = await run_in_threadpool(resolve, websocket)
        job = await run_in_threadpool(_owned, rt, who.account, jobId)
    except ReelforgeError as exc:
        code = {401: 4401, 403: 4403, 404: 4404, 429: 4429}.get(exc.status, 4400)
        await websocket.send_json({"type": "error", "error": exc.message, "fix": exc.fix})
        await websocket.close(code=code)
        return
    closed = asyncio.Event()

    async def drain() -> None:
        try:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
        except Exception:  # the socket is gone either way
            pass
        finally:
            closed.set()

    reader = asyncio.create_task(drain())
    try:
        async for view in watch_job(rt, job.id, _Probe(closed)):  # type: ignore[arg-type]
            await websocket.send_json(_ws_message(jobId, view))
    except Exception:  # a client that left mid-send
        closed.set()
    finally:
        reader.cancel()
        if websocket.application_state == WebSocketState.CONNECTED and not closed.is_set():
            await websocket.close(code=1000)


# ------------------------------------------------------------------ errors

def error_body(exc: ReelforgeError, request: Request) -> tuple[int, dict[str, Any]]:
    if isinstance(exc, UnsupportedMode):
        return 503, {"error": f"Pipeline unavailable: {exc.message}", "fix": exc.fix}
    status = 400 if exc.status in (415, 422) else exc.status
    return status, {"error": exc.message, "fix": exc.fix}


register_formatter(PREFIX + "/", error_body)
