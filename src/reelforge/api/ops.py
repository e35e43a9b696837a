"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import func, select

from ..db.models import Job
from .deps import runtime

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database and broker answer")
def readyz(request: Request) -> JSONResponse:
    rt = runtime(request)
    checks: dict[str, str] = {}
    for name, probe in (("database", rt.db.ping), ("broker", rt.queue.ping)):
        try:
            probe()
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"error: {type(exc).__name__}: {exc}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                        status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    rt = runtime(request)
    with rt.db.session() as s:
        by_status = dict(s.execute(select(Job.status, func.count()).group_by(Job.status)).all())
        render = s.execute(select(func.count(Job.render_seconds),
                                  func.coalesce(func.sum(Job.render_seconds), 0.0))
                           .where(Job.render_seconds.is_not(None))).one()
    lines = ["# HELP reelforge_jobs Jobs by status.", "# TYPE reelforge_jobs gauge"]
    for status in ("queued", "running", "succeeded", "failed", "cancelled"):
        lines.append(f'reelforge_jobs{{status="{status}"}} {int(by_status.get(status, 0))}')
    lines += ["# HELP reelforge_render_seconds Wall seconds spent rendering succeeded jobs.",
              "# TYPE reelforge_render_seconds summary",
              f"reelforge_render_seconds_count {int(render[0])}",
              f"reelforge_render_seconds_sum {float(render[1]):.3f}"]
    depth = rt.queue.depth()
    lines += ["# HELP reelforge_queue_depth Messages waiting in the broker.",
              "# TYPE reelforge_queue_depth gauge",
              f"reelforge_queue_depth {depth if depth is not None else 'NaN'}",
              "# HELP reelforge_queued_jobs Jobs waiting for a worker (database).",
              "# TYPE reelforge_queued_jobs gauge",
              f"reelforge_queued_jobs {int(by_status.get('queued', 0))}"]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
