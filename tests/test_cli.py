"""The command line, run as a user runs it: a real process, a real server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .conftest import free_port, make_jpeg

CLI = [sys.executable, "-m", "reelforge.cli"]


def run(args: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + args, capture_output=True, text=True, env=env, timeout=120, **kw)


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "REELFORGE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}


def test_help_teaches():
    res = run(["--help"], dict(os.environ))
    assert res.returncode == 0
    for command in ("serve", "worker", "doctor", "db", "accounts", "keys", "submit", "status",
                    "wait", "download"):
        assert command in res.stdout


def test_accounts_and_keys_for_scripts(tmp_path):
    env = _env(tmp_path)
    assert run(["db", "upgrade"], env).returncode == 0
    res = run(["accounts", "create", "acme", "--plan", "growth", "--credits", "42"], env)
    assert res.returncode == 0 and "42 credits" in res.stdout
    made = run(["keys", "create", "--account", "acme", "--quiet"], env)
    assert made.returncode == 0
    assert re.fullmatch(r"rf_live_[0-9a-f]{12}_[0-9a-f]{64}\n", made.stdout)
    dk = run(["keys", "create", "--account", "acme", "--format", "dockora", "--quiet"], env)
    assert re.fullmatch(r"dk_[0-9a-f]{64}\n", dk.stdout), dk.stderr
    res = run(["accounts", "create", "acme"], env)
    assert res.returncode == 1 and "fix" in res.stderr
    res = run(["accounts", "create", "other", "--plan", "platinum"], env)
    assert res.returncode == 1 and "starter" in res.stderr
    listing = run(["keys", "list", "--account", "acme"], env)
    assert listing.returncode == 0 and made.stdout[:16] in listing.stdout
    assert made.stdout.strip()[16:] not in listing.stdout  # secrets are never listed


def test_doctor_reports_ffmpeg_and_backends(tmp_path):
    res = run(["doctor"], _env(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    for word in ("ffmpeg", "libx264", "libass", "database", "storage", "broker", "engines"):
        assert word in res.stdout


def test_serve_first_start_prints_an_admin_key_once(tmp_path):
    env = _env(tmp_path)
    port = free_port()
    log = tmp_path / "serve.log"

    def start() -> subprocess.Popen:
        return subprocess.Popen(CLI + ["serve", "--port", str(port)], env=env,
                                stdout=log.open("w"), stderr=subprocess.STDOUT,
                                start_new_session=True)

    def ready() -> None:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError(log.read_text())

    proc = start()
    try:
        ready()
        key = re.search(r"rf_live_[0-9a-f]{12}_[0-9a-f]{64}", log.read_text()).group(0)
        account = httpx.get(f"http://127.0.0.1:{port}/v1/account",
                            headers={"Authorization": f"Bearer {key}"}).json()
        assert account["plan"] == "enterprise"
        image = make_jpeg(tmp_path / "p.jpg")
        submitted = run(["submit", "image_to_video", "--image", str(image), "-o", "duration=5",
                         "--url", f"http://127.0.0.1:{port}", "--key", key], env)
        assert submitted.returncode == 0, submitted.stderr
        job_id = submitted.stdout.strip()
        # no key: wait and download read the local server's database and storage
        waited = run(["wait", job_id], env)
        assert waited.returncode == 0, waited.stderr
        assert "succeeded" in waited.stdout
        out = tmp_path / "out.mp4"
        assert run(["download", job_id, "-o", str(out)], env).returncode == 0
        assert out.stat().st_size > 10_000
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    proc = start()
    try:
        ready()
        assert "rf_live_" not in log.read_text()  # shown once, on the first start only
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
