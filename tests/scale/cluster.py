"""Real reelforge processes sharing PostgreSQL, Redis and storage, for scale tests and
``bench/bench_scale.py``: ``reelforge serve --workers 0`` API processes and
``reelforge worker -c N`` worker processes, each in its own process group with its own
log file."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from reelforge.config import Plan, Settings

PG_URL = os.environ.get("REELFORGE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
REDIS_HOST = "127.0.0.1:6379"

PLANS = {
    "bulk": Plan(requests_per_minute=100000, requests_per_day=1000000, concurrent_jobs=1000,
                 monthly_credits=0, webhooks=True, queue="standard"),
    "bulk_priority": Plan(requests_per_minute=100000, requests_per_day=1000000,
                          concurrent_jobs=1000, monthly_credits=0, webhooks=True,
                          queue="priority"),
    "bulk_dedicated": Plan(requests_per_minute=100000, requests_per_day=1000000,
                           concurrent_jobs=1000, monthly_credits=0, webhooks=True,
                           queue="dedicated"),
    "tight": Plan(requests_per_minute=10, requests_per_day=1000, concurrent_jobs=5,
                  monthly_credits=100, webhooks=True),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# PostgreSQL databases and Redis ------------------------------------------------------

def _admin_dsn() -> str:
    return PG_URL.replace("postgresql+psycopg://", "postgresql://") + "/postgres"


def create_pg_db() -> str:
    import psycopg

    name = f"reelforge_scale_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_pg_db(name: str) -> None:
    import psycopg

    for _ in range(10):  # PostgreSQL may be restarting
        try:
            with psycopg.connect(_admin_dsn(), autocommit=True, connect_timeout=3) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except psycopg.OperationalError:
            time.sleep(1)


def pg_ok() -> bool:
    try:
        import psycopg

        with psycopg.connect(_admin_dsn(), connect_timeout=3):
            return True
    except Exception:
        return False


def redis_ok(url: str = f"redis://{REDIS_HOST}/0") -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


REDIS_START = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port",
               "6379", "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
               "--logfile", "/var/log/redis/ci.log"]


def restart_redis() -> float:
    """Shut Redis down (its data is gone: --save "") and start it again; seconds down."""
    started = time.monotonic()
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "shutdown", "nosave"],
                   capture_output=True, timeout=10)
    deadline = time.monotonic() + 10
    while redis_ok() and time.monotonic() < deadline:
        time.sleep(0.05)
    subprocess.run(REDIS_START, check=True, capture_output=True, timeout=10)
    while not redis_ok():
        if time.monotonic() > deadline + 10:
            raise RuntimeError("Redis did not come back")
        time.sleep(0.05)
    return time.monotonic() - started


def pg_ctl(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    cmd = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]
    if action in ("stop", "restart"):
        cmd += ["-m", "fast"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


# processes --------------------------------------------------------------------------

@dataclass
class Proc:
    kind: str  # api | worker
    popen: subprocess.Popen
    log: Path
    url: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL the process alone (its ffmpeg children live in their own groups)."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout: float = 20) -> None:
        if not self.alive():
            return
        try:
            os.kill(self.pid, signal.SIGCONT)
            os.kill(self.pid, signal.SIGTERM)
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Cluster:
    """API and worker processes on one set of shared services."""

    def __init__(self, root: Path, *, database_url: str, broker_url: str,
                 env: dict[str, str] | None = None) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.procs: list[Proc] = []
        self._n = 0
        self.env = {
            **os.environ,
            "REELFORGE_DATA_DIR": str(self.data_dir),
            "REELFORGE_DATABASE_URL": database_url,
            "REELFORGE_BROKER_URL": broker_url,
            "REELFORGE_SECRET_KEY": "scale-test-secret",
            "REELFORGE_EMBEDDED_WORKERS": "false",
            "REELFORGE_LEASE_SECONDS": "3",
            "REELFORGE_SWEEP_INTERVAL_S": "0.5",
            "REELFORGE_WEBHOOK_POLL_S": "0.2",
            "REELFORGE_WEBHOOK_TIMEOUT_S": "3",
            "REELFORGE_WEBHOOK_SCHEDULE_S": json.dumps([0, 0.5, 1, 1, 1, 1, 1, 1, 1, 1]),
            "REELFORGE_ALLOW_HTTP_WEBHOOKS": "true",
            "REELFORGE_TRUSTED_NETWORKS": '["127.0.0.1/32"]',
            "REELFORGE_PLANS": json.dumps({k: v.model_dump() for k, v in PLANS.items()}),
            "REELFORGE_LOG_LEVEL": "INFO",
            **(env or {}),
        }

    def settings(self) -> Settings:
        """The cluster's settings, as its processes read them (for direct inspection)."""
        env = self.env
        return Settings(
            data_dir=self.data_dir, database_url=env["REELFORGE_DATABASE_URL"],
            broker_url=env["REELFORGE_BROKER_URL"], secret_key=env["REELFORGE_SECRET_KEY"],
            storage_url=env.get("REELFORGE_STORAGE_URL", ""),
            s3_endpoint_url=env.get("REELFORGE_S3_ENDPOINT_URL", ""),
            s3_access_key=env.get("REELFORGE_S3_ACCESS_KEY", ""),
            s3_secret_key=env.get("REELFORGE_S3_SECRET_KEY", ""), plans=PLANS)

    def _spawn(self, kind: str, args: list[str], extra_env: dict[str, str] | None) -> Proc:
        self._n += 1
        log = self.root / f"{kind}{self._n}.log"
        popen = subprocess.Popen([sys.executable, "-m", "reelforge.cli", *args],
                                 env={**self.env, **(extra_env or {})}, stdout=log.open("w"),
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
        proc = Proc(kind, popen, log)
        self.procs.append(proc)
        return proc

    def start_api(self, env: dict[str, str] | None = None, wait: bool = True,
                  workers: int = 0) -> Proc:
        """``reelforge serve``: API only, or with ``workers`` threads (embedded default)."""
        port = free_port()
        proc = self._spawn("api", ["serve", "--host", "127.0.0.1", "--port", str(port),
                                   "--workers", str(workers)], env)
        proc.url = f"http://127.0.0.1:{port}"
        if wait:
            self.wait_ready(proc)
        return proc

    def wait_ready(self, proc: Proc, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while True:
            try:
                if httpx.get(proc.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if not proc.alive() or time.time() > deadline:
                raise RuntimeError(f"{proc.kind} did not start:\n{proc.text()[-3000:]}")
            time.sleep(0.1)

    def start_worker(self, concurrency: int = 2, env: dict[str, str] | None = None) -> Proc:
        return self._spawn("worker", ["worker", "-c", str(concurrency)], env)

    def workers(self) -> list[Proc]:
        return [p for p in self.procs if p.kind == "worker" and p.alive()]

    def stop(self) -> None:
        for proc in self.procs:
            proc.signal(signal.SIGCONT)
        for proc in self.procs:  # workers first: they may be finishing a job
            if proc.kind == "worker":
                proc.stop()
        for proc in self.procs:
            proc.stop()

    def logs(self) -> str:
        return "\n".join(f"===== {p.log.name} (pid {p.pid})\n{p.text()[-4000:]}"
                         for p in self.procs)


# accounts and jobs over HTTP --------------------------------------------------------

def make_account(settings: Settings, name: str, plan: str, credits: int) -> tuple[str, str]:
    """(account id, API key), written straight into the shared database."""
    from reelforge.core import accounts, keys
    from reelforge.db.session import Database

    db = Database(settings.database_url)
    try:
        with db.session() as s:
            acc = accounts.create_account(s, settings, name, plan=plan, credits=credits)
            _, raw = keys.create_key(s, acc, "scale")
        return acc.id, raw
    finally:
        db.dispose()


def retrying(fn: Any, *, attempts: int = 60, delay: float = 0.25) -> httpx.Response:
    """Retry through connection errors and 503s (a service restarting)."""
    last: Any = None
    for _ in range(attempts):
        try:
            last = fn()
            if last.status_code != 503:
                return last
        except httpx.TransportError as exc:
            last = exc
        time.sleep(delay)
    if isinstance(last, Exception):
        raise last
    return last


# a webhook receiver on loopback ------------------------------------------------------

@dataclass
class Delivery:
    webhook_id: str
    job_id: str
    event: str
    answered: int


@dataclass
class Receiver:
    """Records every webhook; answers 500 to a share of first deliveries."""

    fail_share: float = 0.0
    deliveries: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        outer = self
        lock = threading.Lock()
        seen: set[str] = set()
        rng = random.Random(7)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                wid = self.headers["webhook-id"]
                with lock:
                    first = wid not in seen
                    seen.add(wid)
                    code = 500 if first and rng.random() < outer.fail_share else 200
                    outer.deliveries.append(Delivery(wid, body["data"]["id"], body["type"], code))
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def by_job(self) -> dict[str, list[Delivery]]:
        out: dict[str, list[Delivery]] = defaultdict(list)
        for d in list(self.deliveries):
            out[d.job_id].append(d)
        return out

    def close(self) -> None:
        self.httpd.shutdown()


# processes on this machine ------------------------------------------------------------

def processes_mentioning(needle: str) -> list[tuple[int, str]]:
    """(pid, command line) of every live process whose command line contains ``needle``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmd and state != "Z":
            found.append((int(entry.name), cmd))
    return found
