"""Progress bands: what a running job's ``stage`` and ``progress`` read while its engine
reports stages through the worker's heartbeat (recorded in a real SQLite database)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reelforge.core import accounts, jobs
from reelforge.db.models import Job
from reelforge.db.session import Database
from reelforge.queue import scheduler
from reelforge.queue.worker import _Heartbeat

from ..conftest import make_settings


@pytest.fixture
def sqlite_settings(tmp_path: Path):
    return make_settings(tmp_path, f"sqlite:///{tmp_path / 'reelforge.db'}")


@pytest.fixture
def db(sqlite_settings):
    database = Database(sqlite_settings.database_url)
    database.upgrade()
    yield database
    database.dispose()


def _running(db: Database, settings, mode: str, engine: str) -> Job:
    with db.session() as s:
        account_id = accounts.create_account(s, settings, f"a{time.monotonic_ns()}",
                                             plan="unlimited", credits=10_000).id
    req = jobs.SubmitRequest(mode=mode, engine=engine, inputs={}, options={}, cost=1)
    jobs.submit(db, settings, account_id, req, enqueue=lambda j: None)
    job = scheduler.claim_next(db, "w", 30, scheduler.ALL_TIERS)
    assert job is not None and job.mode == mode
    return job


def _trace(db: Database, settings, job: Job,
           steps: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Report each (stage, fraction) as the worker and the engine do; what the job reads."""
    beat = _Heartbeat(db, job, settings, notify=lambda job_id: None, interval=0.0)
    seen = []
    for stage, fraction in steps:
        beat(stage, fraction, force=True)
        with db.session() as s:
            row = s.get(Job, job.id)
            seen.append((row.stage, round(row.progress, 2)))
    return seen


def _percent(seen: list[tuple[str, float]]) -> list[float]:
    return [pct for _, pct in seen]


def test_a_hosted_provider_moves_through_generating_then_rendering(db, sqlite_settings):
    """Generation is most of the wait (5-85 %), conform and encode the rest (85-95 %);
    the output's download between them holds the bar rather than moving it back."""
    job = _running(db, sqlite_settings, "text_to_video", "openai")
    seen = _trace(db, sqlite_settings, job, [
        ("downloading", 0.0),  # the worker fetching inputs
        ("generating", 0.0), ("generating", 0.25), ("generating", 0.5),
        ("generating", 0.75), ("generating", 1.0),
        ("downloading", 0.5), ("downloading", 1.0),  # the provider's video
        ("rendering", 0.0), ("rendering", 0.5), ("rendering", 1.0),
        ("uploading", 0.0)])
    assert _percent(seen) == [0, 5, 25, 45, 65, 85, 85, 85, 85, 90, 95, 95]
    assert [stage for stage, _ in seen][1:6] == ["generating"] * 5


def test_a_local_model_loads_then_generates(db, sqlite_settings):
    job = _running(db, sqlite_settings, "text_to_video", "diffusers")
    seen = _trace(db, sqlite_settings, job, [
        ("downloading", 0.0), ("loading", 0.0), ("loading", 0.0),
        ("generating", 0.1), ("generating", 1.0), ("rendering", 0.2), ("uploading", 0.0)])
    assert _percent(seen) == [0, 0, 0, 13, 85, 87, 95]


def test_image_to_video_rendered_locally_keeps_the_rendering_band(db, sqlite_settings):
    """The local engine does image_to_video without a model: its render is 10-95 %."""
    job = _running(db, sqlite_settings, "image_to_video", "local")
    seen = _trace(db, sqlite_settings, job, [
        ("downloading", 0.0), ("analyzing", 1.0), ("rendering", 0.5), ("rendering", 1.0),
        ("uploading", 0.0)])
    assert _percent(seen) == [0, 10, 52.5, 95, 95]


def test_a_new_stage_is_written_at_once_and_progress_within_one_at_most_each_interval(
        db, sqlite_settings):
    """A render shorter than the interval still shows as ``rendering`` (as a user
    watching the job, or a test killing workers mid-render, expects)."""
    job = _running(db, sqlite_settings, "image_to_video", "local")
    beat = _Heartbeat(db, job, sqlite_settings, notify=lambda job_id: None, interval=60.0)
    seen = []
    for stage, fraction in [("downloading", 0.0), ("analyzing", 0.0), ("analyzing", 1.0),
                            ("rendering", 0.1), ("rendering", 0.9), ("uploading", 0.0)]:
        beat(stage, fraction)
        with db.session() as s:
            row = s.get(Job, job.id)
            seen.append((row.stage, round(row.progress, 2)))
    assert seen == [("downloading", 0), ("analyzing", 5), ("analyzing", 5),
                    ("rendering", 18.5), ("rendering", 18.5), ("uploading", 95)]
