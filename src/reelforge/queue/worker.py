"""Running one job: claim, fetch inputs, render, store, finish — fenced by attempt."""

from __future__ import annotations

import logging
import mimetypes
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Settings
from ..core import assets, leases
from ..core.logs import job_context
from ..db.models import Asset, Job
from ..db.session import Database
from ..engines.base import Artifact, Engine, JobSpec
from ..errors import EngineError, JobError, JobTimedOut, LeaseLost, ReelforgeError
from ..storage.base import Storage

log = logging.getLogger("reelforge.worker")


class JobRunner:
    def __init__(self, settings: Settings, db: Database, storage: Storage,
                 engines: dict[str, Engine], requeue: Callable[[str], None]) -> None:
        self.settings = settings
        self.db = db
        self.storage = storage
        self.engines = engines
        self.requeue = requeue
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.render_seconds_total = 0.0
        self.jobs_done = 0
        self._lock = threading.Lock()

    def process(self, job_id: str) -> None:
        """Dramatiq actor body. Safe to call any number of times for the same job."""
        job = leases.claim(self.db, job_id, f"{self.worker_id}:{threading.get_ident()}",
                           self.settings.lease_seconds)
        if job is None:
            return
        with job_context(job.id, job.request_id):
            log.info("job %s attempt %d: %s on engine %s", job.id, job.attempt, job.mode,
                     job.engine)
            self._run(job)

    def _run(self, job: Job) -> None:
        workdir = self.settings.data_dir / "work" / f"{job.id}-{job.attempt}"
        prefix = f"jobs/{job.id}/a{job.attempt}"
        started = time.monotonic()
        try:
            workdir.mkdir(parents=True, exist_ok=True)
            progress = _Heartbeat(self.db, job, self.settings)
            progress("downloading", 0.0, force=True)
            inputs = self._fetch_inputs(job, workdir / "in")
            engine = self.engines.get(job.engine)
            if engine is None:
                raise EngineError(f"Engine {job.engine!r} is not configured on this worker.",
                                  fix="Configure the engine on every worker, or resubmit.")
            spec = JobSpec(job_id=job.id, mode=job.mode, options=job.options,
                           seed=int(job.options.get("seed", 0)))
            artifacts = engine.run(spec, inputs, workdir / "out", progress)
            progress("uploading", 0.0, force=True)
            outputs = self._store(prefix, artifacts)
            elapsed = time.monotonic() - started
            if leases.complete(self.db, self.settings, job.id, job.attempt, outputs, elapsed):
                with self._lock:
                    self.render_seconds_total += elapsed
                    self.jobs_done += 1
                log.info("job %s succeeded in %.2fs", job.id, elapsed)
            else:
                self.storage.delete_prefix(prefix)
        except LeaseLost:
            log.warning("job %s attempt %d lost its lease; stopping", job.id, job.attempt)
            self.storage.delete_prefix(prefix)
        except JobError as exc:
            self._fail(job, prefix, exc)
        except ReelforgeError as exc:  # e.g. an input asset vanished
            self._fail(job, prefix, JobError(exc.message, fix=exc.fix, code=exc.code))
        except Exception as exc:
            log.exception("job %s crashed", job.id)
            err = EngineError(f"The render failed unexpectedly: {type(exc).__name__}: {exc}")
            self._fail(job, prefix, err)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _fail(self, job: Job, prefix: str, exc: JobError) -> None:
        self.storage.delete_prefix(prefix)
        status = leases.fail(self.db, self.settings, job.id, job.attempt, exc)
        log.warning("job %s attempt %d: %s (%s) -> %s", job.id, job.attempt, exc.code,
                    exc.message, status or "already taken over")
        if status == "queued":
            self.requeue(job.id)

    def _fetch_inputs(self, job: Job, into: Path) -> dict[str, Any]:
        """Local copies of the inputs: a path per name, or a list for list inputs."""
        out: dict[str, Any] = {}
        for name, ids in (job.inputs or {}).items():
            if isinstance(ids, list):
                out[name] = [self._fetch_one(aid, into / f"{name}_{i:02d}")
                             for i, aid in enumerate(ids)]
            else:
                out[name] = self._fetch_one(ids, into / name)
        return out

    def _fetch_one(self, asset_id: str, stem: Path) -> Path:
        with self.db.session() as s:
            asset = s.get(Asset, asset_id)
        if asset is None:
            raise JobError(f"Input asset {asset_id!r} no longer exists.",
                           fix="Upload the input again and resubmit the job.")
        suffix = mimetypes.guess_extension(asset.content_type) or ""
        return assets.copy_to(self.storage, asset, stem.with_name(stem.name + suffix))

    def _store(self, prefix: str, artifacts: list[Artifact]) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        for art in artifacts:
            ext = art.path.suffix or mimetypes.guess_extension(art.content_type) or ""
            key = f"{prefix}/{art.name}{ext}"
            stored = self.storage.put_file(key, art.path, art.content_type)
            outputs[art.name] = {"key": key, "content_type": art.content_type,
                                 "bytes": stored.size, "filename": f"{art.name}{ext}",
                                 **art.meta}
        return outputs


class _Heartbeat:
    """The engine's ``Progress``: renews the lease, records progress, enforces stop.

    Writes at most every ``interval`` seconds; raises ``JobCancelled``/``LeaseLost``
    (from the database) or ``JobTimedOut`` (deadline), which stops the render.
    """

    STAGES = {"downloading": (0, 5), "analyzing": (5, 10), "rendering": (10, 95),
              "uploading": (95, 99)}

    def __init__(self, db: Database, job: Job, settings: Settings, interval: float = 0.5):
        self.db, self.job, self.settings = db, job, settings
        self.interval = interval
        self.deadline = time.monotonic() + settings.job_timeout_s
        self._last = 0.0

    def __call__(self, stage: str, fraction: float, force: bool = False) -> None:
        now = time.monotonic()
        if now > self.deadline:
            raise JobTimedOut(f"The job ran past its {self.settings.job_timeout_s:.0f} s limit.")
        if not force and now - self._last < self.interval:
            return
        self._last = now
        lo, hi = self.STAGES.get(stage, (10, 95))
        pct = lo + (hi - lo) * max(0.0, min(1.0, fraction))
        leases.heartbeat(self.db, self.job.id, self.job.attempt, self.settings.lease_seconds,
                         stage=stage, progress=pct)
