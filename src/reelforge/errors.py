"""One error tree. Every error a user sees says what went wrong and how to fix it.

    ReelforgeError
    ├── BadRequest (400)
    │   └── UnsafeUrl (400)
    ├── Unauthorized (401)
    ├── InsufficientCredits (402)
    ├── Forbidden (403)
    ├── NotFound (404)
    ├── Conflict (409)
    │   ├── ConcurrencyLimit (409)
    │   └── IdempotencyInFlight (409)
    ├── Gone (410)
    ├── TooLarge (413)
    ├── UnsupportedMedia (415)
    ├── Invalid (422)
    │   ├── IdempotencyMismatch (422)
    │   └── UnsupportedMode (422)
    ├── RateLimited (429)
    ├── SourceUnavailable (451)  — a source URL could not be fetched
    ├── Unavailable (503)        — a dependency (database, broker) is down
    └── JobError                 — raised inside a job; never an HTTP answer by itself
        ├── MediaError           — ffmpeg / decoding failed
        ├── EngineError          — an engine or provider failed
        ├── JobCancelled
        ├── JobTimedOut
        └── LeaseLost            — another attempt owns the job now

The HTTP status of each class is its ``status`` attribute; ``api/errors.py`` turns
any of them into ``{"error": {"code", "message", "fix"}}``.
"""

from __future__ import annotations

from typing import Any


class ReelforgeError(Exception):
    status: int = 500
    code: str = "internal_error"
    fix: str = "Retry later; if it keeps failing, report it with the X-Request-Id."

    def __init__(self, message: str, *, fix: str | None = None, code: str | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if fix is not None:
            self.fix = fix
        if code is not None:
            self.code = code
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "fix": self.fix}


class BadRequest(ReelforgeError):
    status, code = 400, "bad_request"
    fix = "Check the request against the API docs at /docs."


class UnsafeUrl(BadRequest):
    code = "unsafe_url"
    fix = "Use a public http(s) URL; private, loopback and link-local addresses are refused."


class Unauthorized(ReelforgeError):
    status, code = 401, "unauthorized"
    fix = "Send your API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."


class InsufficientCredits(ReelforgeError):
    status, code = 402, "insufficient_credits"
    fix = "Add credits to the account, upgrade the plan, or ask for a shorter or lower-quality video."


class Forbidden(ReelforgeError):
    status, code = 403, "forbidden"
    fix = "Use a key of an account that is allowed to do this, or upgrade the plan."


class NotFound(ReelforgeError):
    status, code = 404, "not_found"
    fix = "Check the id; list what exists with the matching GET endpoint."


class Conflict(ReelforgeError):
    status, code = 409, "conflict"
    fix = "Check the resource's current state and retry when it allows this."


class ConcurrencyLimit(Conflict):
    code = "concurrency_limit"
    fix = "Wait for a running job to finish or cancel a queued one, or upgrade the plan."


class IdempotencyInFlight(Conflict):
    code = "idempotency_in_flight"
    fix = "The first request with this Idempotency-Key is still running; retry in a moment."


class Gone(ReelforgeError):
    status, code = 410, "gone"
    fix = "Outputs are kept for the retention period only; submit the job again."


class TooLarge(ReelforgeError):
    status, code = 413, "too_large"
    fix = "Send a smaller file: compress it, shorten it or lower its resolution."


class UnsupportedMedia(ReelforgeError):
    status, code = 415, "unsupported_media"
    fix = "Send JPEG, PNG or WebP images; MP4, MOV, MKV or WebM video; MP3, WAV, M4A, OGG or FLAC audio."


class Invalid(ReelforgeError):
    status, code = 422, "invalid"
    fix = "Correct the field named in the message; allowed values are listed at /docs."


class IdempotencyMismatch(Invalid):
    code = "idempotency_mismatch"
    fix = "Use a new Idempotency-Key for a different request body."


class UnsupportedMode(Invalid):
    code = "unsupported_mode"
    fix = "Pick a mode listed at GET /v1/engines, or configure an engine that supports it."


class RateLimited(ReelforgeError):
    status, code = 429, "rate_limited"
    fix = "Wait for the number of seconds in Retry-After, or upgrade the plan for higher limits."

    def __init__(self, message: str, *, retry_after: int, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class SourceUnavailable(ReelforgeError):
    status, code = 451, "source_unavailable"
    fix = "Make sure the URL is public, answers 200 and serves the media directly."


class Unavailable(ReelforgeError):
    status, code = 503, "unavailable"
    fix = "A backing service is down; retry in a few seconds. Operators: check `reelforge doctor`."


class JobError(ReelforgeError):
    code = "job_failed"
    fix = "Check the inputs and submit again; if it keeps failing, report the job id."
    retryable: bool = False


class MediaError(JobError):
    code = "media_error"
    fix = "Check that the input plays in a normal player; re-encode it to H.264/AAC MP4 or JPEG/PNG."


class EngineError(JobError):
    code = "engine_error"
    retryable = True


class JobCancelled(JobError):
    code = "cancelled"
    fix = "The job was cancelled; submit it again to render it."


class JobTimedOut(JobError):
    code = "timed_out"
    fix = "Ask for a shorter or lower-resolution output, or raise job_timeout_s."


class LeaseLost(JobError):
    code = "lease_lost"
    fix = "Nothing to do: another worker attempt owns this job now."
