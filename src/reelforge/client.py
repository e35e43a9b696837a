"""What the CLI's client commands talk to: the HTTP API, or the local database.

With an API key the CLI is an ordinary HTTP client of any reelforge server. Without
one, on the server's own machine, it reads the same database and storage the server
uses (the admin's view), so ``reelforge wait <id>`` works right after a curl submit.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import httpx

from .config import Settings
from .errors import NotFound, ReelforgeError, Unavailable


class Client(Protocol):
    def get_job(self, job_id: str) -> dict[str, Any]: ...

    def download(self, job_id: str, name: str, dest: Path) -> int: ...

    def submit(self, mode: str, fields: dict[str, str], files: dict[str, Path]) -> dict[str, Any]: ...


def make_client(url: str, key: str | None,
                settings: Callable[[], Settings] | None = None) -> Client:
    if key or settings is None:
        return HttpClient(url, key or "")
    return LocalClient(settings())


class HttpClient:
    def __init__(self, base_url: str, key: str) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=60,
                                  headers={"Authorization": f"Bearer {key}"})

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            try:
                e = response.json().get("error", {})
            except ValueError:
                e = {}
            exc = ReelforgeError(e.get("message", f"HTTP {response.status_code}"),
                                 fix=e.get("fix"), code=e.get("code"))
            exc.status = response.status_code
            raise exc
        return response

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return self._check(self._http.request(method, path, **kw))
        except httpx.TransportError as exc:
            raise Unavailable(f"Cannot reach {self._http.base_url}: {exc}",
                              fix="Start the server (reelforge serve) or pass --url.") from exc

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/jobs/{job_id}").json()

    def submit(self, mode: str, fields: dict[str, str], files: dict[str, Path]) -> dict[str, Any]:
        handles = {n: (p.name, p.open("rb")) for n, p in files.items()}
        try:
            return self._request("POST", "/v1/jobs", data={"mode": mode, **fields},
                                 files=handles).json()
        finally:
            for _, fh in handles.values():
                fh.close()

    def download(self, job_id: str, name: str, dest: Path) -> int:
        size = 0
        with self._http.stream("GET", f"/v1/jobs/{job_id}/artifacts/{name}") as response:
            if response.status_code >= 400:
                response.read()
                self._check(response)
            with dest.open("wb") as fh:
                for chunk in response.iter_bytes():
                    fh.write(chunk)
                    size += len(chunk)
        return size


class LocalClient:
    def __init__(self, settings: Settings) -> None:
        from .db.session import Database
        from .runtime import ensure_secret, make_storage

        ensure_secret(settings)
        self.settings = settings
        self.db = Database(settings.database_url)
        self.storage = make_storage(settings)

    def _job(self, job_id: str) -> Any:
        from .db.models import Job

        with self.db.session() as s:
            job = s.get(Job, job_id)
        if job is None:
            raise NotFound(f"No job {job_id!r} in {self.db.describe()}.",
                           fix="Check the id, or pass --url and --key for a remote server.")
        return job

    def get_job(self, job_id: str) -> dict[str, Any]:
        from .core import jobs

        job = self._job(job_id)
        with self.db.session() as s:
            return jobs.job_view(job, self.settings, jobs.queue_position(s, job))

    def submit(self, mode: str, fields: dict[str, str], files: dict[str, Path]) -> dict[str, Any]:
        raise ReelforgeError("Submitting needs an API key.", fix="Pass --key.")

    def download(self, job_id: str, name: str, dest: Path) -> int:
        job = self._job(job_id)
        facts = (job.outputs or {}).get(name)
        if job.status != "succeeded" or facts is None:
            raise NotFound(f"Job {job_id} has no output {name!r} (status {job.status}).",
                           fix="Wait for it to succeed: reelforge wait " + job_id)
        self.storage.get_file(facts["key"], dest)
        return dest.stat().st_size
