"""S3-compatible storage (AWS S3, MinIO, Ceph, R2, …) through boto3.

``REELFORGE_STORAGE_URL=s3://bucket/prefix``; the endpoint and credentials come from
``s3_endpoint_url``, ``s3_access_key``, ``s3_secret_key`` and ``s3_region`` (empty
credentials: boto3's usual chain — environment, profile, instance role).

Files go up and come down in parts, streamed from and to disk: boto3's managed
transfer switches to a multipart upload past ``part_size`` and never holds a whole
file in memory. Keys behave like the local backend's paths: ``delete_prefix`` and
``list_keys`` treat a prefix as a directory (``jobs/x/a1`` never matches ``a10``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Unavailable
from .base import Storage, StoredObject

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger("reelforge.storage")

MiB = 1024 * 1024


class S3Storage(Storage):
    scheme = "s3"

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str = "",
                 access_key: str = "", secret_key: str = "", region: str = "us-east-1",
                 part_size: int = 16 * MiB, max_concurrency: int = 4) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url or None
        self.region = region or "us-east-1"
        config = Config(region_name=self.region, retries={"max_attempts": 5, "mode": "standard"},
                        max_pool_connections=32, signature_version="s3v4",
                        # MinIO and most self-hosted stores want path-style addressing
                        s3={"addressing_style": "path" if endpoint_url else "auto"})
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None, config=config)
        self.transfer = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size,
                                       max_concurrency=max_concurrency, use_threads=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        rest = settings.storage_url.removeprefix("s3://")
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise ValueError(f"storage URL {settings.storage_url!r} names no bucket: use "
                             "s3://bucket or s3://bucket/prefix")
        return cls(bucket, prefix, endpoint_url=settings.s3_endpoint_url,
                   access_key=settings.s3_access_key, secret_key=settings.s3_secret_key,
                   region=settings.s3_region)

    # keys -------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        parts = key.split("/")
        if key.startswith("/") or any(p in ("..", ".") for p in parts):
            raise ValueError(f"storage key {key!r} escapes the storage root")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _strip(self, full: str) -> str:
        return full[len(self.prefix) + 1:] if self.prefix else full

    def _objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        """Every object whose key starts with the (full) ``prefix``."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            yield from page.get("Contents", ())

    def _under(self, prefix: str) -> list[str]:
        """Full keys of ``prefix`` itself (an object) and of everything below it."""
        if not prefix:
            return [o["Key"] for o in self._objects(f"{self.prefix}/" if self.prefix else "")]
        full = self._key(prefix.rstrip("/"))
        found = [o["Key"] for o in self._objects(full + "/")]
        if not prefix.endswith("/") and self._head(full) is not None:
            found.insert(0, full)
        return found

    def _head(self, full: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            if _status(exc) == 404:
                return None
            raise

    # the Storage interface ----------------------------------------------------------

    def put_file(self, key: str, path: Path, content_type: str) -> StoredObject:
        self.client.upload_file(str(path), self.bucket, self._key(key),
                                ExtraArgs={"ContentType": content_type}, Config=self.transfer)
        return StoredObject(key=key, size=path.stat().st_size)

    def get_file(self, key: str, dest: Path) -> Path:
        from botocore.exceptions import ClientError

        tmp = dest.with_name(f".{dest.name}.part")
        try:
            self.client.download_file(self.bucket, self._key(key), str(tmp), Config=self.transfer)
        except ClientError as exc:
            tmp.unlink(missing_ok=True)
            if _status(exc) == 404:
                raise FileNotFoundError(key) from None
            raise
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(dest)
        return dest

    def open_range(self, key: str, start: int = 0, end: int | None = None,
                   chunk: int = 256 * 1024) -> Iterator[bytes]:
        from botocore.exceptions import ClientError

        wanted = f"bytes={start}-{'' if end is None else end}"
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key),
                                          Range=wanted)["Body"]
        except ClientError as exc:
            if _status(exc) == 404:
                raise FileNotFoundError(key) from None
            if _status(exc) == 416:  # empty object, or start past its end
                return iter(())
            raise
        return _stream(body, chunk)

    def size(self, key: str) -> int:
        head = self._head(self._key(key))
        if head is None:
            raise FileNotFoundError(key)
        return int(head["ContentLength"])

    def delete_prefix(self, prefix: str) -> int:
        keys = self._under(prefix)
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i:i + 1000]]
            done = self.client.delete_objects(Bucket=self.bucket,
                                              Delete={"Objects": batch, "Quiet": True})
            if done.get("Errors"):
                first = done["Errors"][0]
                raise OSError(f"S3 refused to delete {first.get('Key')}: {first.get('Message')}")
        return len(keys)

    def list_keys(self, prefix: str = "") -> list[str]:
        return sorted(self._strip(k) for k in self._under(prefix))

    def presigned_url(self, key: str, expires_s: int, *, filename: str | None = None,
                      content_type: str | None = None) -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if filename:
            params["ResponseContentDisposition"] = f'inline; filename="{filename}"'
        if content_type:
            params["ResponseContentType"] = content_type
        return self.client.generate_presigned_url("get_object", Params=params,
                                                  ExpiresIn=int(expires_s))

    def remove_incomplete(self, older_than_s: float) -> int:
        """Abort multipart uploads that a killed process left behind."""
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=older_than_s)
        aborted = 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else "")
        for page in pages:
            for upload in page.get("Uploads", ()):
                if upload["Initiated"] < cutoff:
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                       UploadId=upload["UploadId"])
                    aborted += 1
        return aborted

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist yet (MinIO and test servers)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _status(exc) not in (404, 400):
                raise _unreachable(self, exc) from exc
        except BotoCoreError as exc:
            raise _unreachable(self, exc) from exc
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.client.create_bucket(**kwargs)
            log.info("created bucket %s", self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in (
                    "BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise _unreachable(self, exc) from exc

    def describe(self) -> str:
        where = self.endpoint_url or f"AWS {self.region}"
        return f"s3://{self.bucket}/{self.prefix} at {where}"


def _stream(body: Any, chunk: int) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(chunk)
    finally:
        body.close()


def _status(exc: Any) -> int:
    response = getattr(exc, "response", {}) or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if status is None and response.get("Error", {}).get("Code") in ("NoSuchKey", "404",
                                                                    "NoSuchBucket"):
        return 404
    return int(status or 0)


def _unreachable(storage: S3Storage, exc: Exception) -> Unavailable:
    return Unavailable(f"The S3 bucket {storage.bucket!r} at "
                       f"{storage.endpoint_url or 'AWS'} is not usable: {exc}",
                       fix="Check REELFORGE_S3_ENDPOINT_URL, REELFORGE_S3_ACCESS_KEY/"
                           "REELFORGE_S3_SECRET_KEY and that the bucket exists or may be "
                           "created with these credentials.")
