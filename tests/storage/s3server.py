"""An S3-compatible server on loopback for tests: moto's server mode, over real HTTP."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import uuid

import httpx
import pytest

ACCESS_KEY = "testing"
SECRET_KEY = "testing"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """``python -m moto.server`` in a child process; stopped with ``close()``."""

    @classmethod
    def start_or_skip(cls) -> MotoServer:
        """Skip (fail in CI) when moto's server mode is not installed."""
        if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
            message = "moto[server] is not installed (pip install 'moto[server]>=5')"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        return cls()

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while True:
            try:
                httpx.get(self.url + "/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                if time.time() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)

    def settings_env(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """REELFORGE_* variables that point a reelforge process at this server."""
        return {"REELFORGE_STORAGE_URL": f"s3://{bucket}/{prefix}".rstrip("/"),
                "REELFORGE_S3_ENDPOINT_URL": self.url,
                "REELFORGE_S3_ACCESS_KEY": ACCESS_KEY,
                "REELFORGE_S3_SECRET_KEY": SECRET_KEY,
                "REELFORGE_S3_REGION": "us-east-1"}

    def storage(self, prefix: str = "", **kwargs: object):  # type: ignore[no-untyped-def]
        """A fresh bucket on this server, as an ``S3Storage``."""
        from reelforge.storage.s3 import S3Storage

        storage = S3Storage(f"rf-{uuid.uuid4().hex[:12]}", prefix, endpoint_url=self.url,
                            access_key=ACCESS_KEY, secret_key=SECRET_KEY, **kwargs)
        storage.ensure_bucket()
        return storage

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
