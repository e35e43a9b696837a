"""Assets: uploaded or fetched inputs, checked by content before anything uses them.

Every path in is the same: bytes land in a private temp file (size capped while
streaming), are sniffed and probed with explicit formats and limits, and only then
are stored and recorded. Any refusal deletes the temp file: nothing is left behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import datetime, timedelta, timezone
from ipaddress import ip_network
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from sqlalchemy.orm import Session

from ..config import Settings
from ..db.models import Account, Asset
from ..db.session import Database
from ..errors import NotFound, TooLarge
from ..media.probe import inspect_file
from ..storage.base import Storage
from . import fetch
from .ids import new_id


@contextmanager
def scratch_file(settings: Settings, suffix: str = "") -> Iterator[Path]:
    tmp_dir = settings.data_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=tmp_dir, suffix=suffix)
    os.close(fd)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def copy_capped(src: BinaryIO, dest: Path, max_bytes: int) -> int:
    """Stream ``src`` into ``dest``; refuse as soon as it passes ``max_bytes``."""
    total = 0
    with dest.open("wb") as out:
        while chunk := src.read(1024 * 1024):
            total += len(chunk)
            if total > max_bytes:
                raise TooLarge(f"The upload is larger than the {max_bytes // (1024 * 1024)} MB "
                               "limit.")
            out.write(chunk)
    return total


def ingest_stream(db: Database, settings: Settings, storage: Storage, account: Account,
                  src: BinaryIO, *, expect: Iterable[str] | None = None,
                  max_bytes: int | None = None) -> Asset:
    cap = min(max_bytes or settings.limits.max_upload_bytes, settings.limits.max_upload_bytes)
    with scratch_file(settings) as tmp:
        copy_capped(src, tmp, cap)
        return _register(db, settings, storage, account, tmp, expect, None)


def ingest_url(db: Database, settings: Settings, storage: Storage, account: Account,
               url: str, *, expect: Iterable[str] | None = None,
               max_bytes: int | None = None) -> Asset:
    cap = min(max_bytes or settings.limits.max_upload_bytes, settings.limits.max_upload_bytes)
    with scratch_file(settings) as tmp:
        fetch.fetch_to_file(url, tmp, max_bytes=cap, timeout_s=settings.limits.fetch_timeout_s,
                            max_redirects=settings.limits.fetch_max_redirects, allow_http=True,
                            trusted=[ip_network(n, strict=False)
                                     for n in settings.trusted_networks])
        return _register(db, settings, storage, account, tmp, expect, url)


def _register(db: Database, settings: Settings, storage: Storage, account: Account,
              tmp: Path, expect: Iterable[str] | None, source_url: str | None) -> Asset:
    """Probe and store outside any transaction; the row is written last."""
    facts = inspect_file(tmp, settings.limits, set(expect) if expect else None)
    digest = _sha256(tmp)
    asset_id = new_id("asset")
    key = f"assets/{account.id}/{asset_id}.{facts.sniff.format}"
    stored = storage.put_file(key, tmp, facts.sniff.content_type)
    asset = Asset(id=asset_id, account_id=account.id, kind=facts.kind,
                  content_type=facts.sniff.content_type, bytes=stored.size, storage_key=key,
                  sha256=digest, meta=_meta(facts), source_url=source_url,
                  expires_at=datetime.now(timezone.utc) + timedelta(days=settings.retention_days))
    try:
        with db.session() as session:
            session.add(asset)
    except BaseException:
        storage.delete_prefix(key)
        raise
    return asset


def _meta(facts: Any) -> dict[str, Any]:
    info = facts.info
    data = asdict(info) if is_dataclass(info) else dict(info or {})
    data["format"] = facts.sniff.format
    return {k: v for k, v in data.items() if isinstance(v, (str, int, float, bool, type(None)))}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


def get_asset(session: Session, account: Account, asset_id: str) -> Asset:
    asset = session.get(Asset, asset_id)
    if asset is None or asset.account_id != account.id:
        raise NotFound(f"No asset {asset_id!r} on this account.",
                       fix="Upload it first with POST /v1/assets and use the returned id.")
    return asset


def asset_view(asset: Asset) -> dict[str, Any]:
    return {"id": asset.id, "object": "asset", "kind": asset.kind,
            "content_type": asset.content_type, "bytes": asset.bytes, "sha256": asset.sha256,
            "meta": asset.meta, "created_at": asset.created_at.isoformat(),
            "expires_at": asset.expires_at.isoformat() if asset.expires_at else None}


def copy_to(storage: Storage, asset: Asset, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    local = getattr(storage, "local_path", None)
    if local is not None:
        shutil.copyfile(local(asset.storage_key), dest)
        return dest
    return storage.get_file(asset.storage_key, dest)


def asset_from_output(db: Database, settings: Settings, storage: Storage, account: Account,
                      job_id: str, name: str = "video") -> Asset:
    """Register a finished job's output as a new input asset (for extend, remix, …)."""
    from .jobs import get_job

    with db.session() as s:
        job = get_job(s, account, job_id)
    facts = (job.outputs or {}).get(name)
    if job.status != "succeeded" or facts is None or job.purged_at is not None:
        raise NotFound(f"Job {job_id} has no {name} output to build on (status {job.status}).",
                       fix="Use the id of a job that succeeded and whose outputs still exist.")
    with scratch_file(settings, suffix=Path(facts["key"]).suffix) as tmp:
        storage.get_file(facts["key"], tmp)
        return _register(db, settings, storage, account, tmp, None, f"job:{job_id}/{name}")
