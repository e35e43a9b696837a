"""The Runway API driven by the official ``runwayml`` SDK against a live server."""

from __future__ import annotations

import base64

import httpx
import pytest
import runwayml
from runwayml import RunwayML
from runwayml.lib import polling

from reelforge.db.models import Job


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch):
    """The SDK waits 6 s (±1.5) between polls; these renders take about one."""
    monkeypatch.setattr(polling, "POLL_TIME", 0.3)
    monkeypatch.setattr(polling, "POLL_JITTER", 0)


def _client(server, key: str) -> RunwayML:
    return RunwayML(api_key=key, base_url=f"{server.url}/runway", max_retries=0)


def _data_uri(media_dir) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(
        (media_dir / "photo.jpg").read_bytes()).decode()


def test_image_to_video_wait_for_task_output_and_delete(live, media_dir):
    _, key = live.account()
    client = _client(live, key)
    task = client.image_to_video.create(model="gen4_turbo", prompt_image=_data_uri(media_dir),
                                        prompt_text="slow push in", ratio="1280:720",
                                        duration=5, seed=7)
    done = task.wait_for_task_output(timeout=60)
    assert done.status == "SUCCEEDED" and done.id == task.id
    assert done.cost.credits > 0 and len(done.output) == 1
    video = httpx.get(done.output[0])
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"

    org = client.organization.retrieve()
    assert org.credit_balance == 1000 - done.cost.credits
    assert org.usage.models["gen4_turbo"].daily_generations == 1
    assert org.tier.models["gen4_turbo"].max_concurrent_generations == 20

    client.tasks.delete(task.id)
    with pytest.raises(runwayml.NotFoundError):
        client.tasks.retrieve(task.id)
    assert httpx.get(done.output[0]).status_code in (404, 410)


def test_delete_cancels_a_pending_task_and_refunds(idle, media, media_dir):
    _, key = idle.account()
    client = _client(idle, key)
    task = client.image_to_video.create(
        model="gen4_turbo", ratio="720:1280",
        prompt_image=[{"uri": _data_uri(media_dir), "position": "first"}])
    got = client.tasks.retrieve(task.id)
    assert got.status in ("PENDING", "THROTTLED") and got.estimated_cost.credits > 0
    assert client.organization.retrieve().credit_balance == 1000 - got.estimated_cost.credits
    with idle.runtime.db.session() as s:
        from reelforge.api.dialects.common import job_from_uuid

        job = s.get(Job, job_from_uuid(task.id))
        assert job.options["aspect_ratio"] == "9:16" and job.options["duration"] == 10
    client.tasks.delete(task.id)
    with pytest.raises(runwayml.NotFoundError):
        client.tasks.retrieve(task.id)
    with pytest.raises(runwayml.NotFoundError):
        client.tasks.delete(task.id)
    assert client.organization.retrieve().credit_balance == 1000


def test_refusals_in_runway_shape(idle, media, media_dir):
    _, key = idle.account()
    client = _client(idle, key)
    with pytest.raises(runwayml.BadRequestError) as exc:
        client.text_to_video.create(model="gen4.5", prompt_text="a cat", ratio="1280:720",
                                    duration=5)
    assert exc.value.status_code == 400 and "text_to_video" in exc.value.body["error"]
    assert "REELFORGE_RUNWAY_API_KEY" in exc.value.body["fix"]
    assert "REELFORGE_DIFFUSERS_MODEL" in exc.value.body["fix"]
    with pytest.raises(runwayml.BadRequestError) as exc:  # https or data URIs only
        client.image_to_video.create(model="gen4_turbo", ratio="1280:720",
                                     prompt_image="http://example.com/a.jpg")
    assert "https" in exc.value.body["error"]
    with pytest.raises(runwayml.BadRequestError) as exc:  # 1080p is for 5 s only
        client.image_to_video.create(model="veo3.1", ratio="1920:1080", duration=10,
                                     prompt_image=_data_uri(media_dir))
    assert "1080p" in exc.value.body["error"]
    with pytest.raises(runwayml.BadRequestError):
        client.image_to_video.create(model="gen4_turbo", ratio="1280:720",
                                     prompt_image="data:image/jpeg;base64,@@@")
    with pytest.raises(runwayml.NotFoundError):
        client.tasks.retrieve("00000000-0000-0000-0000-000000000000")
    with pytest.raises(runwayml.AuthenticationError):
        _client(idle, "key_wrong").tasks.retrieve("00000000-0000-0000-0000-000000000000")
    r = httpx.get(f"{idle.url}/runway/v1/organization",
                  headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 400 and "X-Runway-Version" in r.json()["error"]
    r = httpx.get(f"{idle.url}/runway/v1/organization",
                  headers={"Authorization": f"Bearer {key}", "X-Runway-Version": "2099-01-01"})
    assert r.status_code == 400
    _, broke = idle.account(credits=0)
    with pytest.raises(runwayml.BadRequestError) as exc:
        _client(idle, broke).image_to_video.create(model="gen4_turbo", ratio="1280:720",
                                                   prompt_image=_data_uri(media_dir))
    assert "credits" in exc.value.body["error"]


def test_video_to_video_creates_an_aleph_task(idle, media_dir):
    _, key = idle.account()
    client = _client(idle, key)
    video = "data:video/mp4;base64," + base64.b64encode(
        (media_dir / "clip.mp4").read_bytes()).decode()
    try:
        task = client.video_to_video.create(
            model="aleph2", video_uri=video, prompt_text="make it snow",
            references=[{"type": "image", "uri": _data_uri(media_dir)}])
    except runwayml.BadRequestError as exc:
        assert "video_to_video" in exc.body["error"]
        pytest.skip("no video_to_video engine on this install")
    assert client.tasks.retrieve(task.id).status in ("PENDING", "THROTTLED")


def test_throttled_while_the_account_has_a_running_task(idle, media_dir):
    from reelforge.api.dialects.common import job_from_uuid
    from reelforge.core import leases

    _, key = idle.account()
    client = _client(idle, key)
    first = client.image_to_video.create(model="gen4_turbo", ratio="1280:720",
                                         prompt_image=_data_uri(media_dir))
    second = client.image_to_video.create(model="gen4_turbo", ratio="1280:720",
                                          prompt_image=_data_uri(media_dir))
    claimed = leases.claim(idle.runtime.db, job_from_uuid(first.id), "test", 30)
    assert claimed is not None
    leases.heartbeat(idle.runtime.db, claimed.id, claimed.attempt, 30, "rendering", 40)
    running = client.tasks.retrieve(first.id)
    assert running.status == "RUNNING" and 0.3 < running.progress < 0.5
    assert client.tasks.retrieve(second.id).status == "THROTTLED"
    client.tasks.delete(first.id)  # cancels a running task too
    client.tasks.delete(second.id)
