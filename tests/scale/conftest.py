"""Fixtures for tests with real processes on shared PostgreSQL, Redis and S3.

Tests marked ``disruptive`` restart Redis or PostgreSQL, which breaks whatever else is
using them at that moment. They run in CI (``CI`` set; CI runs tests one at a time) or
when ``REELFORGE_DISRUPTIVE_TESTS=1``; elsewhere they are skipped.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from ..storage.s3server import MotoServer
from .cluster import create_pg_db, drop_pg_db, flush_redis, pg_ok, redis_ok


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "disruptive: restarts Redis or PostgreSQL (CI only, "
                                       "or REELFORGE_DISRUPTIVE_TESTS=1)")


def disruptive_allowed() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("REELFORGE_DISRUPTIVE_TESTS") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if disruptive_allowed():
        return
    skip = pytest.mark.skip(reason="restarts Redis/PostgreSQL: runs in CI, or set "
                                   "REELFORGE_DISRUPTIVE_TESTS=1")
    for item in items:
        if "disruptive" in item.keywords:
            item.add_marker(skip)


def _need(ok: bool, what: str) -> None:
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not reachable (CI must have it)")
    pytest.skip(f"{what} is not reachable")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for the test, dropped afterwards."""
    from .cluster import PG_URL

    _need(pg_ok(), "PostgreSQL on 127.0.0.1:5432")
    name = create_pg_db()
    yield f"{PG_URL}/{name}"
    drop_pg_db(name)


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    """A Redis database of our own (12-14 are this suite's), emptied first."""
    _need(redis_ok(), "Redis on 127.0.0.1:6379")
    db = getattr(request, "param", 12)
    url = f"redis://127.0.0.1:6379/{db}"
    flush_redis(url)
    return url


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer.start_or_skip()
    yield server
    server.close()


@pytest.fixture
def service_tools() -> None:
    for tool in ("redis-server", "redis-cli", "pg_ctlcluster"):
        _need(shutil.which(tool) is not None, tool)
