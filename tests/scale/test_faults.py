"""Nothing is lost when parts fail.

Two API processes and two worker processes share PostgreSQL, Redis and S3 (moto's
server on loopback). 200 short jobs are submitted and, while they run, a worker is
killed with SIGKILL mid-render every few seconds (and started again), Redis is
restarted once (losing every queued message), and a worker is paused with SIGSTOP past
its lease and then resumed. Afterwards every job is terminal, credits moved exactly
once per job, the ledger adds up, each final state sent exactly one webhook event
(redeliveries with the same webhook-id), and no file is left that no job owns.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import select

from reelforge.db.models import Account, Asset, Job, LedgerEntry, WebhookEvent
from reelforge.db.session import Database
from reelforge.runtime import make_storage

from ..conftest import make_jpeg
from .cluster import Cluster, Proc, Receiver, make_account, processes_mentioning, \
    restart_redis, retrying

pytestmark = [pytest.mark.disruptive, pytest.mark.slow, pytest.mark.timeout(600)]

JOBS = int(os.environ.get("REELFORGE_FAULT_JOBS", "200"))
KILL_EVERY_S = 3.0
RENDER_SCALE = os.environ.get("REELFORGE_FAULT_RENDER_SCALE", "0.25")  # small, fast renders
TERMINAL = ("succeeded", "failed", "cancelled")
STAGES = ("starting", "downloading", "analyzing", "rendering", "uploading")


class Chaos:
    """Kills, pauses and restarts, recorded for the assertions."""

    def __init__(self, cluster: Cluster, db: Database) -> None:
        self.cluster, self.db = cluster, db
        self.kills: list[tuple[int, str, int]] = []  # (pid, job id, attempt)
        self.mid_render = 0  # kills while the job was in its rendering stage
        self.rng = random.Random(6)
        self.orphan_checks: list[tuple[int, list]] = []
        self.paused: tuple[Proc, str, int] | None = None
        self.redis_down_s: float | None = None
        self.stopped: set[int] = set()  # the paused worker, never chosen to be killed
        # Held while a victim is chosen and signalled, so that the pauser (a thread of
        # its own) and the killer never pick the same worker: one SIGKILLed while it is
        # stopped dies without a word, and the test would wait for its refusal in vain.
        self.choosing = threading.Lock()

    def running(self, stages: tuple[str, ...] = ("rendering",)) -> list[tuple[Proc, str, int]]:
        """(worker, job id, attempt) for jobs in ``stages`` right now on a live worker."""
        with self.db.session() as s:
            rows = s.execute(select(Job.id, Job.attempt, Job.worker_id).where(
                Job.status == "running", Job.stage.in_(stages))).all()
        procs = {p.pid: p for p in self.cluster.workers() if p.pid not in self.stopped}
        out = []
        for job_id, attempt, worker_id in rows:
            pid = int(worker_id.split(":")[1])
            if pid in procs:
                out.append((procs[pid], job_id, attempt))
        return out

    def kill_one(self, any_stage: bool) -> bool:
        """SIGKILL a worker while its job renders (or, failing that, in any stage)."""
        with self.choosing:
            rendering = self.running()
            victims = rendering or (self.running(STAGES) if any_stage else [])
            if not victims:
                return False
            proc, job_id, attempt = self.rng.choice(victims)
            proc.kill()
        self.kills.append((proc.pid, job_id, attempt))
        self.mid_render += bool(rendering)
        self.cluster.start_worker(2)
        workdir = f"/work/{os.uname().nodename}-{proc.pid}/"
        deadline = time.time() + 8  # the other worker's janitor reaps within a second or two
        while (left := processes_mentioning(workdir)) and time.time() < deadline:
            time.sleep(0.2)
        self.orphan_checks.append((proc.pid, left))
        return True

    def pause_past_lease(self, lease_s: float) -> None:
        """SIGSTOP a worker mid-render until another attempt has taken its job."""
        for _ in range(200):
            with self.choosing:
                victims = self.running()
                if victims:
                    proc, job_id, attempt = victims[0]
                    proc.signal(signal.SIGSTOP)
                    self.stopped.add(proc.pid)
            if not victims:
                time.sleep(0.1)
                continue
            with self.db.session() as s:
                job = s.get(Job, job_id)
            if job.status == "running" and job.attempt == attempt:
                break  # stopped while it still owned the job
            proc.signal(signal.SIGCONT)  # the short render ended before the stop landed
            self.stopped.discard(proc.pid)
        else:
            return
        self.paused = (proc, job_id, attempt)
        deadline = time.time() + lease_s + 30  # (+ up to 10 s of its locks held)
        while time.time() < deadline:
            with self.db.session() as s:
                job = s.get(Job, job_id)
            if job.attempt > attempt or job.status in TERMINAL:
                break
            time.sleep(0.2)
        time.sleep(1.0)
        # Resumed, it is still spared the kills: killed before its next heartbeat, it
        # would never say that its late work was refused (what the test checks).
        proc.signal(signal.SIGCONT)


def _statuses(db: Database, account_ids: list[str]) -> Counter:
    with db.session() as s:
        return Counter(s.scalars(select(Job.status).where(Job.account_id.in_(account_ids))))


def test_nothing_is_lost_when_parts_fail(tmp_path, pg_url, redis_url, moto_server,
                                         service_tools):
    receiver = Receiver(fail_share=0.15)
    cluster = Cluster(tmp_path, database_url=pg_url, broker_url=redis_url,
                      env={**moto_server.settings_env(f"rf-faults-{os.getpid()}", "media"),
                           "REELFORGE_RENDER_SCALE": RENDER_SCALE, "REELFORGE_MAX_ATTEMPTS": "5"})
    started = time.monotonic()
    try:
        api1 = cluster.start_api()  # migrates the database first
        api2 = cluster.start_api()
        for _ in range(2):
            cluster.start_worker(2)
        settings = cluster.settings()
        db = Database(settings.database_url)
        storage = make_storage(settings)
        accounts = {plan: make_account(settings, f"{plan}-acct", plan, 100_000)
                    for plan in ("bulk", "bulk_priority", "bulk_dedicated")}
        account_ids = [a for a, _ in accounts.values()]
        image = make_jpeg(tmp_path / "photo.jpg", (480, 320)).read_bytes()
        assets = {}
        for plan, (_, key) in accounts.items():
            r = httpx.post(api1.url + "/v1/assets", headers={"Authorization": f"Bearer {key}"},
                           files={"file": ("photo.jpg", image)}, timeout=30)
            assert r.status_code == 201, r.text
            assets[plan] = r.json()["id"]
        plans = ["bulk"] * 3 + ["bulk_priority", "bulk_dedicated"]  # 60% / 20% / 20%

        def submit(i: int) -> str:
            plan = plans[i % len(plans)]
            api = (api1, api2)[i % 2]
            r = retrying(lambda: httpx.post(
                api.url + "/v1/jobs", timeout=30,
                headers={"Authorization": f"Bearer {accounts[plan][1]}",
                         "Idempotency-Key": f"job-{i}"},
                json={"mode": "image_to_video", "duration": 5, "image_asset_id": assets[plan],
                      "seed": i, "webhook_url": receiver.url}))
            assert r.status_code in (200, 201), r.text
            return r.json()["id"]

        chaos = Chaos(cluster, db)
        job_ids: list[str] = []
        done: dict[str, object] = {}

        def submit_all() -> None:
            """Submit every job, then cancel a few still queued (409: a worker was first)."""
            try:
                with ThreadPoolExecutor(8) as pool:
                    job_ids.extend(pool.map(submit, range(JOBS)))
                done["submitted_s"] = time.monotonic() - started
                cancelled = 0
                for job_id in job_ids[-20::2]:
                    key = next(k for a, k in accounts.values() if _owner(db, job_id) == a)
                    r = retrying(lambda: httpx.post(
                        f"{api2.url}/v1/jobs/{job_id}/cancel", timeout=30,
                        headers={"Authorization": f"Bearer {key}"}))
                    assert r.status_code in (200, 409), r.text
                    cancelled += r.status_code == 200
                done["cancelled"] = cancelled
            except BaseException as exc:
                done["error"] = exc

        submitter = threading.Thread(target=submit_all)
        submitter.start()
        pauser = threading.Thread(target=chaos.pause_past_lease, args=(settings.lease_seconds,))
        deadline = time.monotonic() + 420
        next_kill = time.monotonic() + 2.0
        while True:
            counts = _statuses(db, account_ids)
            if not submitter.is_alive() and sum(counts[s] for s in TERMINAL) == JOBS:
                break
            assert "error" not in done, done["error"]
            assert time.monotonic() < deadline, f"stuck: {counts}\n{cluster.logs()}"
            if pauser.ident is None and time.monotonic() - started > 8:
                pauser.start()
            if chaos.redis_down_s is None and counts["succeeded"] >= JOBS // 4:
                chaos.redis_down_s = restart_redis()
            if time.monotonic() >= next_kill and chaos.kill_one(
                    any_stage=time.monotonic() > next_kill + 1.0):
                next_kill = time.monotonic() + KILL_EVERY_S
            time.sleep(0.2)
        assert "error" not in done, done["error"]
        submitted_s, cancelled = done["submitted_s"], done["cancelled"]
        pauser.join(60)
        run_s = time.monotonic() - started

        # webhooks: every event delivered; storage: stray files reconciled
        deadline = time.monotonic() + 90
        while True:
            with db.session() as s:
                pending = s.scalar(select(WebhookEvent.id).where(
                    WebhookEvent.status != "delivered").limit(1))
            orphans = _orphans(db, storage)
            if pending is None and not orphans:
                break
            assert time.monotonic() < deadline, (pending, orphans)
            time.sleep(0.5)
        cluster.stop()

        # 1. every job is terminal, most of them succeeded
        counts = _statuses(db, account_ids)
        assert sum(counts[s] for s in TERMINAL) == JOBS == len(set(job_ids)), counts
        assert counts["cancelled"] == cancelled
        assert counts["succeeded"] >= JOBS * 0.8, counts
        with db.session() as s:
            jobs = {j.id: j for j in s.scalars(select(Job).where(Job.id.in_(job_ids)))}
            ledger = s.scalars(select(LedgerEntry)).all()
            events = s.scalars(select(WebhookEvent)).all()
            balances = {a.id: (a.balance, a.held) for a in s.scalars(select(Account))}
            asset_keys = set(s.scalars(select(Asset.storage_key)))

        # 2. credits moved exactly once per job, and the ledger adds up per account
        kinds = defaultdict(Counter)
        for entry in ledger:
            if entry.job_id:
                kinds[entry.job_id][entry.kind] += 1
        for job in jobs.values():
            expect = ({"reserve": 1, "capture": 1} if job.status == "succeeded"
                      else {"reserve": 1, "release": 1})
            assert kinds[job.id] == expect, (job.id, job.status, kinds[job.id])
        for account_id in account_ids:
            mine = [e for e in ledger if e.account_id == account_id]
            total = Counter()
            for e in mine:
                total[e.kind] += e.amount
            assert balances[account_id] == (
                total["grant"] - total["reserve"] + total["release"], 0)
            assert total["reserve"] == total["capture"] + total["release"]

        # 3. one event per final state; every delivery of it carries the same webhook-id
        by_job = defaultdict(list)
        for event in events:
            by_job[event.job_id].append(event)
        received = receiver.by_job()
        for job in jobs.values():
            (event,) = by_job[job.id]
            assert event.event_type == f"job.{job.status}"
            assert {d.webhook_id for d in received[job.id]} == {event.id}
            assert {d.event for d in received[job.id]} == {f"job.{job.status}"}
            assert any(d.answered == 200 for d in received[job.id])
        assert any(len(ds) > 1 for ds in received.values())  # some were redelivered

        # 4. storage holds exactly the succeeded jobs' outputs and the inputs
        outputs = {f["key"] for j in jobs.values() if j.status == "succeeded"
                   for f in j.outputs.values()}
        assert set(storage.list_keys()) == outputs | asset_keys

        # 5. the chaos happened, and left nothing running or half-written behind
        assert len(chaos.kills) >= 3 and chaos.mid_render >= 1, chaos.kills
        assert all(not left for _, left in chaos.orphan_checks), chaos.orphan_checks
        retried = [j for _, j, a in chaos.kills if jobs[j].attempt > a]
        assert retried and all(jobs[j].status in TERMINAL for j in retried)
        assert chaos.redis_down_s is not None
        assert processes_mentioning(str(tmp_path / "data")) == []
        assert [p for p in (tmp_path / "data" / "work").rglob("*") if p.is_file()] == []

        # 6. the paused worker's late heartbeat or finish was refused
        assert chaos.paused is not None
        proc, job_id, attempt = chaos.paused
        fenced = (f"job {job_id} attempt {attempt} lost its lease",
                  f"job {job_id} attempt {attempt} finished late")
        assert any(line in proc.text() for line in fenced), (proc.popen.returncode,
                                                             proc.text()[-3000:])
        assert jobs[job_id].attempt > attempt

        failures = Counter(j.error["code"] for j in jobs.values() if j.status == "failed")
        print(f"\nfault suite: {JOBS} jobs {dict(counts)} (failed: {dict(failures)}); "
              f"submitted in {submitted_s:.1f}s, all terminal after {run_s:.1f}s; "
              f"{len(chaos.kills)} workers killed ({chaos.mid_render} mid-render), Redis "
              f"down {chaos.redis_down_s:.2f}s, paused {job_id} attempt {attempt}; "
              f"{sum(len(d) for d in received.values())} webhook deliveries")
    finally:
        cluster.stop()
        receiver.close()


def _owner(db: Database, job_id: str) -> str:
    with db.session() as s:
        return s.get(Job, job_id).account_id


def _orphans(db: Database, storage) -> list[str]:  # type: ignore[no-untyped-def]
    with db.session() as s:
        owned = {f["key"] for outs in s.scalars(select(Job.outputs).where(
            Job.status == "succeeded")) for f in outs.values()}
        owned |= set(s.scalars(select(Asset.storage_key)))
    return [k for k in storage.list_keys() if k not in owned]

