"""The storage interface: named blobs under keys like ``jobs/<id>/video.mp4``."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int


class Storage(abc.ABC):
    scheme: str

    @abc.abstractmethod
    def put_file(self, key: str, path: Path, content_type: str) -> StoredObject: ...

    @abc.abstractmethod
    def get_file(self, key: str, dest: Path) -> Path:
        """Copy the object to ``dest`` and return it."""

    @abc.abstractmethod
    def open_range(self, key: str, start: int = 0, end: int | None = None,
                   chunk: int = 256 * 1024) -> Iterator[bytes]:
        """Stream bytes ``start``..``end`` (inclusive) of the object."""

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes; raises ``FileNotFoundError`` when absent."""

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; returns how many."""

    @abc.abstractmethod
    def list_keys(self, prefix: str = "") -> list[str]: ...

    def presigned_url(self, key: str, expires_s: int, *, filename: str | None = None,
                      content_type: str | None = None) -> str | None:
        """A URL that serves the object without credentials for ``expires_s`` seconds,
        or None when the backend cannot make one (the API then streams the bytes)."""
        return None

    def remove_incomplete(self, older_than_s: float) -> int:
        """Remove what interrupted uploads left behind; returns how many."""
        return 0

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
            return True
        except FileNotFoundError:
            return False

    def describe(self) -> str:
        return self.scheme
