"""Serving outputs: HTTP Range, and signed expiring URLs that need no API key."""

from __future__ import annotations

import re
import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from ..core.signing import verify_path
from ..db.models import Job
from ..errors import Forbidden, Gone, NotFound, ReelforgeError
from ..runtime import Runtime
from .deps import runtime

router = APIRouter(tags=["files"])
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(ReelforgeError):
    status, code = 416, "range_not_satisfiable"
    fix = "Ask for a byte range inside the file's size (see Content-Range)."


def serve_artifact(rt: Runtime, job: Job, name: str, range_header: str | None) -> Response:
    if job.purged_at is not None:
        raise Gone(f"The outputs of job {job.id} were deleted.")
    facts = (job.outputs or {}).get(name)
    if job.status != "succeeded" or facts is None:
        available = ", ".join(job.outputs or {}) or "none yet"
        raise NotFound(f"Job {job.id} has no output named {name!r} (available: {available}).",
                       fix="Wait for the job to succeed, then use a name from its outputs.")
    key = facts["key"]
    try:
        size = rt.storage.size(key)
    except FileNotFoundError:
        raise Gone(f"The output {name!r} of job {job.id} is no longer stored.") from None
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=86400",
               "Content-Disposition": f'inline; filename="{facts.get("filename", name)}"'}
    start, end, status = 0, size - 1, 200
    if range_header:
        m = _RANGE.match(range_header.strip())
        if not m or (not m.group(1) and not m.group(2)):
            raise RangeNotSatisfiable(f"Unsupported Range header {range_header!r}.")
        if m.group(1):
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
        else:  # suffix range: the last N bytes
            start = max(0, size - int(m.group(2)))
        if start > end or start >= size:
            raise RangeNotSatisfiable(f"Range {range_header} is outside the {size} bytes.",
                                      content_range=f"bytes */{size}")
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    return StreamingResponse(rt.storage.open_range(key, start, end), status_code=status,
                             media_type=facts.get("content_type", "application/octet-stream"),
                             headers=headers)


@router.get("/v1/files/{job_id}/{name}", summary="Signed, expiring download URL of an output")
def signed_file(job_id: str, name: str, request: Request, expires: int = 0,
                sig: str = "") -> Response:
    rt = runtime(request)
    if not verify_path(rt.settings.secret_key, f"/v1/files/{job_id}/{name}", expires, sig):
        raise Forbidden("This download link is invalid or has expired.", code="bad_signature",
                        fix="Fetch the job again (GET /v1/jobs/{id}) for a fresh link.")
    with rt.db.session() as s:
        job = s.get(Job, job_id)
    if job is None:
        raise NotFound(f"No job {job_id!r}.")
    if rt.settings.s3_presigned_downloads:
        facts = (job.outputs or {}).get(name)
        if job.status == "succeeded" and job.purged_at is None and facts is not None:
            url = rt.storage.presigned_url(facts["key"], max(60, expires - int(time.time())),
                                           filename=facts.get("filename", name),
                                           content_type=facts.get("content_type"))
            if url is not None:
                return RedirectResponse(url, status_code=307)
    return serve_artifact(rt, job, name, request.headers.get("range"))
