"""What every dialect needs: vendor-shaped ids, submitting, loading jobs, signed URLs.

Vendor ids map to job ids without a lookup table. A job id is ``job_`` plus 26
Crockford base-32 characters (128 bits), so it converts both ways to a UUID (Runway,
KIE) or keeps its 26 characters behind the vendor's own prefix (``task_…``,
``video_…``). Ids a client sends are decoded and then looked up with the account and
dialect checks, so a forged id is just a 404.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from ...config import Settings
from ...core import accounts, jobs
from ...core.signing import signed_query
from ...core.submission import InputRef, JobRequest
from ...db.models import Account, Job
from ...errors import BadRequest, NotFound, ReelforgeError, TooLarge
from ...runtime import Runtime
from ..deps import runtime

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
_SUFFIX = re.compile(r"^[0-9a-hjkmnp-tv-z]{26}$")


# ------------------------------------------------------------------------ ids

def job_suffix(job_id: str) -> str:
    """The 26 characters after ``job_``."""
    return job_id.partition("_")[2]


def job_from_suffix(suffix: str) -> str | None:
    suffix = suffix.lower()
    return f"job_{suffix}" if _SUFFIX.match(suffix) else None


def job_from_prefixed(value: str, prefix: str) -> str | None:
    """``task_<26>`` → ``job_<26>`` (None when ``value`` has another shape)."""
    if not value.startswith(prefix):
        return None
    return job_from_suffix(value[len(prefix):])


def job_uuid(job_id: str) -> str:
    number = 0
    for char in job_suffix(job_id):
        number = number * 32 + _INDEX[char]
    return str(uuid.UUID(int=number))


def job_from_uuid(value: str) -> str | None:
    try:
        number = uuid.UUID(value.strip()).int
    except (ValueError, AttributeError):
        return None
    chars = []
    for _ in range(26):
        number, rem = divmod(number, 32)
        chars.append(_ALPHABET[rem])
    return "job_" + "".join(reversed(chars))


def derived_uuid(job_id: str, what: str) -> str:
    """A stable UUID for something that belongs to a job (e.g. KIE's videoId)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"reelforge:{job_id}:{what}"))


# ------------------------------------------------------------------------ jobs

async def submit(request: Request, account: Account, key_id: str | None,
                 req: JobRequest) -> tuple[Job, bool]:
    """Submit in a worker thread; afterwards X-Credits-Remaining shows the new balance."""
    rt = runtime(request)
    job, created = await run_in_threadpool(rt.submitter.submit, account, key_id, req)
    request.state.credits = await run_in_threadpool(balance, rt, account.id)
    return job, created


def balance(rt: Runtime, account_id: str) -> int:
    with rt.db.session() as s:
        return accounts.get_account(s, account_id).balance


def load_job(rt: Runtime, account: Account, job_id: str | None, dialect: str,
             what: str = "task") -> tuple[Job, int | None]:
    """The job and its queue position, if it is this account's and this dialect's."""
    if job_id is not None:
        with rt.db.session() as s:
            job = s.get(Job, job_id)
            if job is not None and job.account_id == account.id and job.dialect == dialect:
                return job, jobs.queue_position(s, job)
    raise NotFound(f"No such {what} on this account.",
                   fix=f"Use the id returned when the {what} was created.")


def update_meta(rt: Runtime, job_id: str, **changes: Any) -> Job:
    with rt.db.session() as s:
        job = s.get(Job, job_id)
        job.meta = {**(job.meta or {}), **changes}
        return job


def running_jobs(rt: Runtime, account_id: str) -> int:
    from sqlalchemy import func, select

    with rt.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Job).where(
            Job.account_id == account_id, Job.status == "running")) or 0)


# ------------------------------------------------------------------------ outputs

def signed_url(settings: Settings, job: Job, name: str, ttl_s: int | None = None) -> str | None:
    """A download link that needs no key; by default it lasts as long as the output."""
    if job.status != "succeeded" or job.purged_at is not None or name not in (job.outputs or {}):
        return None
    if ttl_s is None:
        ttl_s = settings.download_url_ttl_s
        if job.expires_at is not None:
            left = (job.expires_at - datetime.now(timezone.utc)).total_seconds()
            ttl_s = max(ttl_s, int(left))
    path = f"/v1/files/{job.id}/{name}"
    return f"{settings.public_base_url.rstrip('/')}{path}?" + signed_query(
        settings.secret_key, path, ttl_s)


def expired(job: Job) -> bool:
    if job.purged_at is not None:
        return True
    return job.expires_at is not None and job.expires_at < datetime.now(timezone.utc)


def failure(job: Job) -> tuple[str | None, str | None, str | None]:
    """(code, message, fix) of a failed or cancelled job."""
    if job.status == "cancelled":
        return "cancelled", "The job was cancelled.", "Submit it again to render it."
    if job.status != "failed":
        return None, None, None
    err = job.error or {}
    return (err.get("code") or "job_failed", err.get("message") or "The job failed.",
            err.get("fix"))


# ------------------------------------------------------------------------ inputs

_DATA_URI = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(;[\w-]+=[^;,]*)*(;base64)?,", re.I)


def data_uri_ref(uri: str, max_bytes: int, field: str) -> InputRef:
    """A ``data:…;base64,…`` URI as an uploaded stream."""
    match = _DATA_URI.match(uri)
    if match is None or not match.group(3):
        raise BadRequest(f"{field} is not a base64 data URI.",
                         fix="Send data:image/png;base64,<data> or an https URL.", field=field)
    payload = uri[match.end():]
    if len(payload) * 3 // 4 > max_bytes:
        raise TooLarge(f"The data URI in {field} is larger than "
                       f"{max_bytes // (1024 * 1024)} MB.",
                       fix="Send a smaller file, or host it and pass an https URL.")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"The data URI in {field} is not valid base64.",
                         fix="Encode the file with standard base64.", field=field) from None
    return InputRef(stream=io.BytesIO(data))


def url_ref(url: str, field: str, settings: Settings, *, https_only: bool = False,
            data_max_bytes: int | None = None) -> InputRef:
    """An input given by URL (or data URI when ``data_max_bytes`` is set)."""
    if not isinstance(url, str) or not url.strip():
        raise BadRequest(f"{field} must be a URL.", fix=f"Send {field} as a public URL.",
                         field=field)
    url = url.strip()
    if data_max_bytes is not None and url[:5].lower() == "data:":
        return data_uri_ref(url, data_max_bytes, field)
    if https_only and not url.lower().startswith("https://") and not trusted_http(url, settings):
        raise BadRequest(f"{field} must be an https URL.",
                         fix="Serve the file over https" + (
                             ", or send it inline as a data URI." if data_max_bytes else "."),
                         field=field)
    if not url.lower().startswith(("http://", "https://")):
        raise BadRequest(f"{field} must be an http(s) URL.", fix="Send a public https URL.",
                         field=field)
    return InputRef(url=url)


def trusted_http(url: str, settings: Settings) -> bool:
    """Plain http is allowed to hosts the operator listed in ``trusted_networks``."""
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n, strict=False) for n in settings.trusted_networks
               if ipaddress.ip_network(n, strict=False).version == ip.version)


# ------------------------------------------------------------------------ formats

def iso(dt: datetime | None, ms: bool = False) -> str | None:
    if dt is None:
        return None
    dt = dt.astimezone(timezone.utc)
    if ms:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def unix(dt: datetime | None) -> int | None:
    return int(dt.timestamp()) if dt is not None else None


def status_for(exc: ReelforgeError, mapping: dict[int, int]) -> int:
    return mapping.get(exc.status, exc.status)


# ------------------------------------------------------------------------ headers

HeaderHook = Callable[[Request, Response], None]
HEADER_HOOKS: list[tuple[str, HeaderHook]] = []


def register_headers(prefix: str, hook: HeaderHook) -> None:
    """``hook(request, response)`` adds a dialect's own headers to every answer under
    ``prefix`` (errors included)."""
    HEADER_HOOKS.append((prefix, hook))


async def dialect_headers(request: Request,
                          call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    path = request.url.path
    for prefix, hook in HEADER_HOOKS:
        if path.startswith(prefix):
            hook(request, response)
    return response


def all_jobs(rt: Runtime, account: Account, dialect: str, cap: int = 1000) -> list[Job]:
    """A dialect's jobs of an account, newest first, for APIs that list without pages."""
    rows: list[Job] = []
    cursor = None
    with rt.db.session() as s:
        while len(rows) < cap:
            page, cursor = jobs.list_jobs(s, account, limit=100, cursor=cursor,
                                          dialect=dialect)
            rows += page
            if cursor is None:
                break
    return rows[:cap]
