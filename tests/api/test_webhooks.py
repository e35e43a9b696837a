"""Webhooks over real HTTP on loopback, verified with the standardwebhooks library."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook

from ..conftest import LiveServer, make_jpeg, make_settings


class Receiver:
    """Answers 500 to the first ``fail_first`` deliveries, then 200; records each."""

    def __init__(self, fail_first: int = 1) -> None:
        self.calls: list[tuple[dict, bytes, int]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                code = 500 if len(outer.calls) < fail_first else 200
                outer.calls.append(({k.lower(): v for k, v in self.headers.items()}, body, code))
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture
def hook_api(tmp_path, db_url):
    settings = make_settings(tmp_path, db_url, allow_http_webhooks=True,
                             trusted_networks=["127.0.0.1/32"])
    live = LiveServer(settings, start_workers=False)
    from reelforge.queue.sweeper import background_loops
    live.runtime.loops = background_loops(live.runtime.db, settings, live.runtime.storage,
                                          live.runtime.queue.enqueue)
    for loop in live.runtime.loops:
        loop.start()
    yield live
    live.stop()


def test_delivery_retries_after_500_and_verifies(hook_api, tmp_path):
    receiver = Receiver(fail_first=1)
    _, key = hook_api.account("hooked", plan="growth")
    with hook_api.client(key) as c:
        secret = c.get("/v1/account/webhook-secret").json()["secret"]
        assert secret.startswith("whsec_")
        job = c.post("/v1/jobs", data={"mode": "image_to_video", "webhook_url": receiver.url},
                     files={"image": ("p.jpg", make_jpeg(tmp_path / "p.jpg").read_bytes())}).json()
        assert c.post(f"/v1/jobs/{job['id']}/cancel").status_code == 200
        deadline = time.time() + 20
        while time.time() < deadline and len(receiver.calls) < 2:
            time.sleep(0.1)
        deliveries = c.get("/v1/webhooks/deliveries", params={"job_id": job["id"]}).json()["data"]
    receiver.close()
    assert [code for _, _, code in receiver.calls] == [500, 200]
    (h1, b1, _), (h2, b2, _) = receiver.calls
    assert h1["webhook-id"] == h2["webhook-id"]  # a redelivery carries the same id
    verified = Webhook(secret).verify(b2, {k: h2[k] for k in
                                           ("webhook-id", "webhook-timestamp", "webhook-signature")})
    assert verified["type"] == "job.cancelled" and verified["data"]["id"] == job["id"]
    import hashlib, hmac, base64
    # the hex HMAC keyed with the secret string, as vidgen's Node snippet computes it
    assert h2["x-webhook-signature"] == hmac.new(secret.encode(), b2, hashlib.sha256).hexdigest()
    assert len(deliveries) == 1 and deliveries[0]["status"] == "delivered"
    assert [d["status_code"] for d in deliveries[0]["deliveries"]] == [500, 200]


def test_redeliver_and_rotate(hook_api, tmp_path):
    receiver = Receiver(fail_first=0)
    _, key = hook_api.account("again", plan="growth")
    with hook_api.client(key) as c:
        job = c.post("/v1/jobs", data={"mode": "image_to_video", "webhook_url": receiver.url},
                     files={"image": ("p.jpg", make_jpeg(tmp_path / "q.jpg").read_bytes())}).json()
        c.post(f"/v1/jobs/{job['id']}/cancel")
        _wait(lambda: len(receiver.calls) == 1)
        new_secret = c.post("/v1/account/webhook-secret/rotate").json()["secret"]
        event = c.get("/v1/webhooks/deliveries").json()["data"][0]
        assert c.post(f"/v1/webhooks/deliveries/{event['id']}/redeliver").status_code == 200
        _wait(lambda: len(receiver.calls) == 2)
    receiver.close()
    headers, body, _ = receiver.calls[1]
    assert headers["webhook-id"] == event["id"]
    Webhook(new_secret).verify(body, {k: headers[k] for k in
                                      ("webhook-id", "webhook-timestamp", "webhook-signature")})


def _wait(cond, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


def test_webhook_rules(tmp_path, db_url):
    live = LiveServer(make_settings(tmp_path, db_url), start_workers=False)
    try:
        _, starter = live.account("nohooks", plan="starter")
        _, growth = live.account("hooks", plan="growth")
        img = make_jpeg(tmp_path / "r.jpg").read_bytes()
        with live.client(starter) as c:
            r = c.post("/v1/jobs", data={"mode": "image_to_video",
                                         "webhook_url": "https://example.com/h"},
                       files={"image": ("p.jpg", img)})
            assert r.status_code == 403 and r.json()["error"]["code"] == "webhooks_not_in_plan"
        with live.client(growth) as c:
            r = c.post("/v1/jobs", data={"mode": "image_to_video",
                                         "webhook_url": "http://example.com/h"},
                       files={"image": ("p.jpg", img)})
            assert r.status_code == 400 and "https" in r.json()["error"]["message"]
            for bad in ("https://127.0.0.1/h", "https://[::1]/h", "https://[::ffff:127.0.0.1]/h",
                        "https://0.0.0.0/h", "https://169.254.169.254/latest",
                        "https://2130706433/h", "https://localhost/h"):
                r = c.post("/v1/jobs", data={"mode": "image_to_video", "webhook_url": bad},
                           files={"image": ("p.jpg", img)})
                assert r.status_code == 400, bad
                assert r.json()["error"]["code"] == "unsafe_url", bad
            assert c.get("/v1/jobs").json()["data"] == []
    finally:
        live.stop()
