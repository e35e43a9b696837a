"""PostgreSQL restarts during a run: the API answers 503 with a fix (never 500) while it
is down, and everything recovers by itself when it is back."""

from __future__ import annotations

import time
from collections import Counter

import httpx
import pytest
from sqlalchemy import select

from reelforge.db.models import Account, Job, LedgerEntry
from reelforge.db.session import Database

from ..conftest import make_jpeg
from .cluster import Cluster, make_account, pg_ctl, pg_ok, retrying

pytestmark = [pytest.mark.disruptive, pytest.mark.timeout(300)]


def test_api_answers_503_while_postgres_is_down_then_recovers(tmp_path, pg_url, redis_url,
                                                              service_tools):
    cluster = Cluster(tmp_path, database_url=pg_url, broker_url=redis_url,
                      env={"REELFORGE_RENDER_SCALE": "0.25"})
    try:
        api = cluster.start_api()
        cluster.start_worker(2)
        _, key = make_account(cluster.settings(), "pgfan", "bulk", 1000)
        auth = {"Authorization": f"Bearer {key}"}
        image = make_jpeg(tmp_path / "p.jpg", (480, 320)).read_bytes()
        asset = httpx.post(api.url + "/v1/assets", headers=auth, timeout=30,
                           files={"file": ("p.jpg", image)}).json()["id"]
        ids = []
        for i in range(8):
            r = httpx.post(api.url + "/v1/jobs", headers=auth, timeout=30,
                           json={"mode": "image_to_video", "duration": 10,
                                 "image_asset_id": asset, "seed": i})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        while httpx.get(f"{api.url}/v1/jobs/{ids[0]}", headers=auth).json()["status"] == "queued":
            time.sleep(0.1)  # stop PostgreSQL while jobs are rendering

        answers: list[httpx.Response] = []
        pg_ctl("stop")
        try:
            down_until = time.monotonic() + 2.5
            while time.monotonic() < down_until:
                answers.append(httpx.get(f"{api.url}/v1/jobs/{ids[0]}", headers=auth, timeout=10))
                answers.append(httpx.post(api.url + "/v1/jobs", headers=auth, timeout=10,
                                          json={"mode": "image_to_video",
                                                "image_asset_id": asset}))
                answers.append(httpx.get(api.url + "/readyz", timeout=10))
                time.sleep(0.1)
        finally:
            pg_ctl("start")
        assert Counter(r.status_code for r in answers) == {503: len(answers)}
        for r in answers:
            body = r.json()
            if r.url.path == "/readyz":
                assert body["checks"]["database"].startswith("error")
            else:
                assert body["error"]["code"] == "unavailable" and body["error"]["fix"]

        recovered_in = time.monotonic()
        r = retrying(lambda: httpx.get(f"{api.url}/v1/jobs/{ids[0]}", headers=auth,
                                       timeout=10), attempts=120)
        assert r.status_code == 200
        recovered_in = time.monotonic() - recovered_in
        assert httpx.get(api.url + "/readyz").status_code == 200
        deadline = time.time() + 120
        statuses: dict[str, str] = {}
        while time.time() < deadline:
            statuses = {i: httpx.get(f"{api.url}/v1/jobs/{i}", headers=auth).json()["status"]
                        for i in ids}
            if all(s in ("succeeded", "failed") for s in statuses.values()):
                break
            time.sleep(0.5)
        assert set(statuses.values()) == {"succeeded"}, (statuses, cluster.logs())

        db = Database(pg_url)
        with db.session() as s:
            kinds = Counter((e.job_id, e.kind) for e in s.scalars(select(LedgerEntry)))
            held = s.scalar(select(Account.held).where(Account.name == "pgfan"))
            jobs = s.scalars(select(Job)).all()
        db.dispose()
        assert all(kinds[(j.id, "reserve")] == kinds[(j.id, "capture")] == 1 for j in jobs)
        assert held == 0
        api_log = [p for p in cluster.procs if p.kind == "api"][0].text()
        assert "-> 500" not in api_log
        print(f"\nPostgreSQL down ~2.5 s: {len(answers)} answers, all 503 with a fix; API "
              f"answered 200 again {recovered_in:.1f} s after the restart")
    finally:
        if not pg_ok():
            pg_ctl("start")
        cluster.stop()
