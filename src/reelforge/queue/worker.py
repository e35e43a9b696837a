"""Running jobs: claim the best one, fetch inputs, render, store, finish — fenced by attempt.

Each worker process renders under ``<data_dir>/work/<host>-<pid>/``. A process killed
with SIGKILL cannot clean up after itself, so every worker process on the machine
reaps the directories of dead ones (``reap_dead_workers``): it kills any ffmpeg still
writing there, then deletes the partial files.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import shutil
import signal
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
from ..errors import (EngineError, JobError, JobTimedOut, LeaseLost, ReelforgeError,
                      Unavailable)
from ..storage.base import Storage
from . import scheduler

log = logging.getLogger("reelforge.worker")


class JobRunner:
    def __init__(self, settings: Settings, db: Database, storage: Storage,
                 engines: dict[str, Engine], requeue: Callable[[str], None],
                 notify: Callable[[str], None] = lambda job_id: None) -> None:
        self.settings = settings
        self.db = db
        self.storage = storage
        self.engines = engines
        self.requeue = requeue
        self.notify = notify
        self.tiers = scheduler.tier_priorities(settings.worker_tiers)
        host = socket.gethostname()
        self.worker_id = f"{host}:{os.getpid()}"
        self.workroot = work_root(settings) / f"{host}-{os.getpid()}"
        self.draining = threading.Event()  # set at shutdown: take no new job
        self.render_seconds_total = 0.0
        self.jobs_done = 0
        self._lock = threading.Lock()

    def process(self, job_id: str) -> None:
        """Dramatiq actor body: run the best waiting jobs until none is left.

        ``job_id`` only says that something was queued; the scheduler picks the job.
        Safe to call any number of times.
        """
        worker = f"{self.worker_id}:{threading.get_ident()}"
        while not self.draining.is_set():
            try:
                job = scheduler.claim_next(self.db, worker, self.settings.lease_seconds,
                                           self.tiers)
                if job is None:
                    self._pass_on()
                    return
            except Unavailable as exc:  # the sweeper rings again once the database is back
                log.warning("cannot claim jobs: %s", exc.message)
                return
            with job_context(job.id, job.request_id):
                log.info("job %s attempt %d: %s on engine %s", job.id, job.attempt, job.mode,
                         job.engine)
                self._run(job)

    def _pass_on(self) -> None:
        """Nothing here for this worker's tiers: hand the wake-up to the other tiers."""
        if self.tiers != scheduler.ALL_TIERS:
            other = scheduler.waiting_outside(self.db, self.tiers)
            if other is not None:
                self.requeue(other)

    def _run(self, job: Job) -> None:
        workdir = self.workroot / f"{job.id}-{job.attempt}"
        prefix = f"jobs/{job.id}/a{job.attempt}"
        started = time.monotonic()
        try:
            workdir.mkdir(parents=True, exist_ok=True)
            progress = _Heartbeat(self.db, job, self.settings, self.notify)
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
            if self._complete(job, outputs, elapsed):
                with self._lock:
                    self.render_seconds_total += elapsed
                    self.jobs_done += 1
                log.info("job %s succeeded in %.2fs", job.id, elapsed)
                self._remove_other_attempts(job.id, prefix)
            else:
                self.storage.delete_prefix(prefix)
        except LeaseLost:
            log.warning("job %s attempt %d lost its lease; stopping", job.id, job.attempt)
            self._delete_quietly(prefix)
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
            self.notify(job.id)

    def _complete(self, job: Job, outputs: dict[str, Any], elapsed: float) -> bool:
        """Finish the job; ride out a database restart for as long as the lease lasts."""
        deadline = time.monotonic() + self.settings.lease_seconds
        delay = 0.25
        while True:
            try:
                return leases.complete(self.db, self.settings, job.id, job.attempt, outputs,
                                       elapsed)
            except Unavailable:
                if time.monotonic() + delay > deadline:
                    raise LeaseLost(f"Job {job.id}: the database stayed unreachable past "
                                    "the lease; another attempt will run it.") from None
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _remove_other_attempts(self, job_id: str, prefix: str) -> None:
        """Outputs that earlier attempts stored before they died are garbage now."""
        try:
            for key in self.storage.list_keys(f"jobs/{job_id}"):
                if not key.startswith(prefix + "/"):
                    self.storage.delete_prefix(key)
        except Exception as exc:  # the sweeper's reconcile pass tries again later
            log.warning("job %s: could not remove other attempts' files: %s", job_id, exc)

    def _delete_quietly(self, prefix: str) -> None:
        try:
            self.storage.delete_prefix(prefix)
        except Exception as exc:
            log.warning("could not delete %s: %s", prefix, exc)

    def _fail(self, job: Job, prefix: str, exc: JobError) -> None:
        self._delete_quietly(prefix)
        try:
            status = leases.fail(self.db, self.settings, job.id, job.attempt, exc)
        except Unavailable:
            log.warning("job %s attempt %d: %s, and the database is unreachable; the "
                        "sweeper will retry it when the lease ends", job.id, job.attempt,
                        exc.code)
            return
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

    def close(self) -> None:
        """At shutdown: remove this process's work directory if nothing is left in it."""
        try:
            self.workroot.rmdir()
        except OSError:
            pass


class _Heartbeat:
    """The engine's ``Progress``: renews the lease, records progress, enforces stop.

    Writes when the stage changes (so a stage shorter than ``interval``, such as a
    small render, still shows) and otherwise at most every ``interval`` seconds;
    raises ``JobCancelled``/``LeaseLost`` (from the database) or ``JobTimedOut``
    (deadline), which stops the render. While the database is unreachable the render
    goes on until the lease would have run out.
    """

    STAGES = {"downloading": (0, 5), "analyzing": (5, 10), "rendering": (10, 95),
              "uploading": (95, 99)}
    # Modes whose stages other than rendering take real time get their own bands.
    MODE_STAGES = {"clips": {"downloading": (0, 10), "analyzing": (10, 35),
                             "transcribing": (35, 60), "rendering": (60, 95),
                             "uploading": (95, 99)}}
    # Generative engines (a local model, a hosted provider; text_to_video and
    # image_to_video today) spend most of the job in "generating" (after "loading" a
    # model), then conform and encode the result ("rendering"). The local engine does
    # image_to_video by rendering alone, so the bands follow the stages the engine
    # reports, not the mode: the first generative stage switches to these.
    GENERATIVE = frozenset({"loading", "generating"})
    GENERATIVE_STAGES = {"downloading": (0, 5), "loading": (0, 5), "generating": (5, 85),
                         "rendering": (85, 95), "uploading": (95, 99)}

    def __init__(self, db: Database, job: Job, settings: Settings,
                 notify: Callable[[str], None], interval: float = 0.5):
        self.db, self.job, self.settings, self.notify = db, job, settings, notify
        self.interval = interval
        self.deadline = time.monotonic() + settings.job_timeout_s
        self._last = 0.0
        self._leased_until = time.monotonic() + settings.lease_seconds
        self._stages = self.MODE_STAGES.get(job.mode, self.STAGES)
        self._pct = 0.0  # progress never goes backwards within an attempt
        self._stage = ""  # the stage last written

    def __call__(self, stage: str, fraction: float, force: bool = False) -> None:
        if stage in self.GENERATIVE:
            self._stages = self.GENERATIVE_STAGES
        now = time.monotonic()
        if now > self.deadline:
            raise JobTimedOut(f"The job ran past its {self.settings.job_timeout_s:.0f} s limit.")
        if not force and stage == self._stage and now - self._last < self.interval:
            return
        self._last, self._stage = now, stage
        lo, hi = self._stages.get(stage, (10, 95))
        pct = self._pct = max(self._pct, lo + (hi - lo) * max(0.0, min(1.0, fraction)))
        try:
            leases.heartbeat(self.db, self.job.id, self.job.attempt,
                             self.settings.lease_seconds, stage=stage, progress=pct)
        except Unavailable:
            if now > self._leased_until:
                raise LeaseLost(f"Job {self.job.id}: the database was unreachable for the "
                                "whole lease; another attempt will run it.") from None
            return
        self._leased_until = now + self.settings.lease_seconds
        self.notify(self.job.id)


def work_root(settings: Settings) -> Path:
    return (settings.data_dir / "work").resolve()


def reap_dead_workers(root: Path) -> int:
    """Kill the ffmpeg orphans of dead worker processes on this host, delete their files.

    Returns how many work directories were removed.
    """
    if not root.is_dir():
        return 0
    host = socket.gethostname()
    removed = 0
    for entry in root.iterdir():
        owner_host, _, pid = entry.name.rpartition("-")
        if owner_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        killed = _kill_writers(entry)
        shutil.rmtree(entry, ignore_errors=True)
        removed += 1
        log.warning("removed the work directory of dead worker %s (%d orphaned process "
                    "group(s) killed)", entry.name, killed)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead, just not reaped yet
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] != "Z"
    except (OSError, ValueError, IndexError):
        return True


def _kill_writers(directory: Path) -> int:
    """SIGKILL the process group of every process whose command line names ``directory``."""
    needle = (str(directory) + "/").encode()
    proc = Path("/proc")
    if not proc.is_dir():
        return 0
    groups: set[int] = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                groups.add(os.getpgid(int(entry.name)))
        except (OSError, ProcessLookupError):
            continue
    for pgid in groups:
        if pgid in (os.getpgid(0), 0, 1):
            continue
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return len(groups)
