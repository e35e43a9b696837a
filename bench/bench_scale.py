"""Scale-out figures: job throughput with 1 and 2 worker processes, and status-poll
requests per second (p50/p99) with 1 and 2 API processes, each against the embedded
default (`reelforge serve`: SQLite, local files, in-process workers).

Scale-out runs on PostgreSQL and Redis on this machine (127.0.0.1:5432, :6379; a fresh
database and Redis DB 14) with local-directory storage, every part a real
`reelforge serve --workers 0` / `reelforge worker` process. The poll load comes from a
separate process (this script with --loadgen: asyncio + httpx, keep-alive connections,
spread round-robin over the API processes).

    python bench/bench_scale.py [--jobs 16] [--per-worker 2] [--seconds 10] [--clients 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import make_jpeg  # noqa: E402
from tests.scale.cluster import (  # noqa: E402
    PG_URL, Cluster, create_pg_db, drop_pg_db, flush_redis, make_account,
)

REDIS_URL = "redis://127.0.0.1:6379/14"
JOB = {"mode": "image_to_video", "duration": 5, "quality": "720p", "style": "cinematic"}


# the load generator (a separate process) -----------------------------------------------

async def _load(urls: list[str], key: str, job_id: str, seconds: float,
                clients: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, limits=limits,
                                 timeout=30) as client:
        async def one(n: int) -> None:
            nonlocal errors
            i = n
            while (now := time.perf_counter()) < stop_at:
                r = await client.get(f"{urls[i % len(urls)]}/v1/jobs/{job_id}")
                i += 1
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - now)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(clients)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {"rps": len(latencies) / elapsed, "errors": errors,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)]}


def poll_load(urls: list[str], key: str, job_id: str, seconds: float,
              clients: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--loadgen", ",".join(urls), key, job_id,
                          str(seconds), str(clients)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# one configuration --------------------------------------------------------------------

def _submit_all(api_url: str, key: str, asset: str, n: int, offset: int) -> list[str]:
    ids = []
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        for i in range(n):
            r = c.post(api_url + "/v1/jobs", json={**JOB, "image_asset_id": asset,
                                                   "seed": offset + i})
            r.raise_for_status()
            ids.append(r.json()["id"])
    return ids


def _wait_all(api_url: str, key: str, ids: list[str], timeout: float = 1800) -> None:
    deadline = time.time() + timeout
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        pending = list(ids)
        while pending:
            if time.time() > deadline:
                raise RuntimeError(f"{len(pending)} jobs did not finish")
            job = c.get(f"{api_url}/v1/jobs/{pending[0]}").json()
            if job["status"] == "succeeded":
                pending.pop(0)
            elif job["status"] in ("failed", "cancelled"):
                raise RuntimeError(f"job {job['id']} {job['status']}: {job['error']}")
            else:
                time.sleep(0.1)


def run_config(label: str, cluster: Cluster, apis: list, args: argparse.Namespace,
               image: bytes) -> dict[str, object]:
    settings = cluster.settings()
    _, key = make_account(settings, f"bench-{label}", "bulk", 10_000_000)
    api = apis[0].url
    r = httpx.post(api + "/v1/assets", headers={"Authorization": f"Bearer {key}"},
                   files={"file": ("photo.jpg", image)}, timeout=60)
    r.raise_for_status()
    asset = r.json()["id"]
    result: dict[str, object] = {"label": label}
    if args.jobs:
        _wait_all(api, key, _submit_all(api, key, asset, 2, 0))  # warm every process up
        started = time.perf_counter()
        ids = _submit_all(api, key, asset, args.jobs, 100)
        _wait_all(api, key, ids)
        result["jobs_per_min"] = args.jobs / (time.perf_counter() - started) * 60
    job_id = _submit_all(api, key, asset, 1, 10_000)[0]
    _wait_all(api, key, [job_id])
    result["poll"] = poll_load([a.url for a in apis], key, job_id, args.seconds, args.clients)
    return result


def embedded(args: argparse.Namespace, image: bytes) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cluster = Cluster(root, database_url=f"sqlite:///{root / 'data' / 'reelforge.db'}",
                          broker_url="memory://", env={"REELFORGE_LOG_LEVEL": args.log_level})
        try:
            api = cluster.start_api(workers=args.per_worker)
            return run_config(f"embedded (serve, SQLite, {args.per_worker} threads)", cluster,
                              [api], args, image)
        finally:
            cluster.stop()


def scaled(args: argparse.Namespace, image: bytes, api_count: int,
           worker_count: int) -> dict[str, object]:
    name = create_pg_db()
    flush_redis(REDIS_URL)
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), database_url=f"{PG_URL}/{name}", broker_url=REDIS_URL,
                          env={"REELFORGE_LOG_LEVEL": args.log_level})
        try:
            apis = [cluster.start_api() for _ in range(api_count)]
            for _ in range(worker_count):
                cluster.start_worker(args.per_worker)
            label = (f"{api_count} API + {worker_count} worker process"
                     f"{'es' if worker_count > 1 else ''} (-c {args.per_worker})")
            return run_config(label, cluster, apis, args, image)
        finally:
            cluster.stop()
            drop_pg_db(name)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--loadgen":
        urls, key, job_id, seconds, clients = sys.argv[2:7]
        print(json.dumps(asyncio.run(_load(urls.split(","), key, job_id, float(seconds),
                                           int(clients)))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=16, help="jobs per throughput run")
    parser.add_argument("--per-worker", type=int, default=2,
                        help="render threads per worker process (and embedded threads)")
    parser.add_argument("--seconds", type=float, default=10, help="seconds of poll load")
    parser.add_argument("--clients", type=int, default=32, help="concurrent pollers")
    parser.add_argument("--log-level", default="INFO", help="the processes' log level")
    args = parser.parse_args()
    image = make_jpeg(Path(tempfile.mkdtemp()) / "photo.jpg", (1600, 1000)).read_bytes()
    print(f"machine: {os.cpu_count()} CPUs; job: image_to_video {JOB['duration']} s "
          f"{JOB['quality']}; {args.jobs} jobs per run; poll load {args.clients} clients "
          f"for {args.seconds:.0f} s from a separate process\n")
    rows = [embedded(args, image), scaled(args, image, 1, 1)]
    two_workers = scaled(args, image, 1, 2)
    args_polls_only = argparse.Namespace(**{**vars(args), "jobs": 0})
    two_apis = scaled(args_polls_only, image, 2, 1)
    rows += [two_workers, two_apis]
    print(f"{'configuration':<46} {'jobs/min':>9} {'polls/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for row in rows:
        poll = row["poll"]
        jobs = f"{row['jobs_per_min']:.1f}" if "jobs_per_min" in row else "-"
        print(f"{row['label']:<46} {jobs:>9} {poll['rps']:>9.0f} {poll['p50_ms']:>8.1f} "
              f"{poll['p99_ms']:>8.1f}" + (f"  ({poll['errors']:.0f} errors)"
                                           if poll["errors"] else ""))


if __name__ == "__main__":
    main()
