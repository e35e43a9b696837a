"""Local directory storage (the embedded default)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from .base import Storage, StoredObject


class LocalStorage(Storage):
    scheme = "file"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"storage key {key!r} escapes the storage root")
        return path

    def put_file(self, key: str, path: Path, content_type: str) -> StoredObject:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        try:
            os.link(path, tmp)  # same filesystem: no copy
        except OSError:
            shutil.copyfile(path, tmp)
        os.replace(tmp, dest)
        return StoredObject(key=key, size=dest.stat().st_size)

    def get_file(self, key: str, dest: Path) -> Path:
        src = self._path(key)
        if not src.exists():
            raise FileNotFoundError(key)
        shutil.copyfile(src, dest)
        return dest

    def local_path(self, key: str) -> Path:
        """The file itself, for readers on this machine (no copy)."""
        return self._path(key)

    def open_range(self, key: str, start: int = 0, end: int | None = None,
                   chunk: int = 256 * 1024) -> Iterator[bytes]:
        path = self._path(key)
        with path.open("rb") as fh:
            fh.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                data = fh.read(chunk if remaining is None else min(chunk, remaining))
                if not data:
                    break
                if remaining is not None:
                    remaining -= len(data)
                yield data

    def size(self, key: str) -> int:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        return path.stat().st_size

    def delete_prefix(self, prefix: str) -> int:
        base = self._path(prefix)
        if base.is_file():
            base.unlink()
            return 1
        if not base.is_dir():
            return 0
        count = sum(1 for p in base.rglob("*") if p.is_file())
        shutil.rmtree(base, ignore_errors=True)
        return count

    def list_keys(self, prefix: str = "") -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            return [prefix]
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*")
                      if p.is_file() and not p.name.startswith("."))

    def remove_incomplete(self, older_than_s: float) -> int:
        """Temp files of a ``put_file`` whose process died before the rename."""
        cutoff = time.time() - older_than_s
        removed = 0
        for tmp in self.root.rglob(".*.tmp"):
            try:
                if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def describe(self) -> str:
        return f"local directory {self.root}"
