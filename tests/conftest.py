"""Shared fixtures: real databases (SQLite and PostgreSQL), a real server on loopback,
generated media. Nothing is mocked and nothing is downloaded."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw

from reelforge.config import Plan, Settings

PG_URL = os.environ.get("REELFORGE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")


def _pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(_admin_dsn(), connect_timeout=3):
            return True
    except Exception:
        return False


def _admin_dsn() -> str:
    return PG_URL.replace("postgresql+psycopg://", "postgresql://") + "/postgres"


@pytest.fixture(scope="session")
def pg_available() -> bool:
    return _pg_available()


def _make_pg_db() -> str:
    import psycopg

    name = f"reelforge_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_pg_db(name: str) -> None:
    import psycopg

    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'reelforge.db'}"
        return
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 (CI must have it)")
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = _make_pg_db()
    yield f"{PG_URL}/{name}"
    _drop_pg_db(name)


TEST_PLANS = {
    "starter": Plan(requests_per_minute=10, requests_per_day=50, concurrent_jobs=2,
                    monthly_credits=250, webhooks=False),
    "growth": Plan(requests_per_minute=30, requests_per_day=300, concurrent_jobs=5,
                   monthly_credits=1500, webhooks=True, queue="priority"),
    "enterprise": Plan(requests_per_minute=100, requests_per_day=2000, concurrent_jobs=20,
                       monthly_credits=10000, webhooks=True, queue="dedicated"),
    "unlimited": Plan(requests_per_minute=100000, requests_per_day=1000000,
                      concurrent_jobs=1000, monthly_credits=0, webhooks=True),
}


def make_settings(tmp_path: Path, db_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = dict(
        data_dir=tmp_path / "data", database_url=db_url, plans=TEST_PLANS,
        secret_key="test-secret", sweep_interval_s=0.5, webhook_poll_s=0.2,
        lease_seconds=5.0, workers=2, webhook_schedule_s=[0, 1, 1, 1])
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, db_url)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The real app under uvicorn, on a loopback port, in a background thread."""

    def __init__(self, settings: Settings, start_workers: bool = True) -> None:
        import uvicorn

        from reelforge.api.app import create_app
        from reelforge.runtime import Runtime

        self.port = free_port()
        settings.public_base_url = f"http://127.0.0.1:{self.port}"
        self.settings = settings
        self.runtime = Runtime.build(settings)
        self.runtime.db.upgrade()
        app = create_app(self.runtime, start_workers=start_workers)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def account(self, name: str | None = None, plan: str = "enterprise",
                credits: int | None = 1000) -> tuple[str, str]:
        """Create an account and a key; returns (account_id, key)."""
        from reelforge.core import accounts, keys

        with self.runtime.db.session() as s:
            acc = accounts.create_account(s, self.settings, name or uuid.uuid4().hex[:8],
                                          plan=plan, credits=credits)
            _, raw = keys.create_key(s, acc)
        return acc.id, raw

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    live = LiveServer(settings)
    yield live
    live.stop()


def wait_for(client: httpx.Client, job_id: str, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s: {job}")


def make_jpeg(path: Path, size: tuple[int, int] = (960, 640)) -> Path:
    """A photo-like test image: gradient sky, ground, a sun and a figure."""
    w, h = size
    img = Image.new("RGB", size)
    draw = ImageDraw.Draw(img)
    for y in range(h):
        t = y / h
        draw.line([(0, y), (w, y)], fill=(int(40 + 120 * t), int(90 + 80 * t), int(200 - 90 * t)))
    draw.rectangle([0, int(h * 0.7), w, h], fill=(60, 110, 50))
    draw.ellipse([int(w * 0.7), int(h * 0.1), int(w * 0.85), int(h * 0.1 + w * 0.15)],
                 fill=(250, 210, 90))
    draw.rectangle([int(w * 0.3), int(h * 0.4), int(w * 0.38), int(h * 0.72)], fill=(90, 40, 30))
    img.save(path, "JPEG", quality=90)
    return path


@pytest.fixture
def jpeg(tmp_path: Path) -> Path:
    return make_jpeg(tmp_path / "photo.jpg")
