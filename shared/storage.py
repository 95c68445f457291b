"""The object store: one interface, two backends — S3 through the ``minio`` client (MinIO, AWS,
moto) and a local directory. Bytes of every clip, frame, snapshot, checkpoint and report live here.

Keys are validated before any backend sees them (no traversal, no absolute paths, no control
characters), so a key that came from a request or a manifest cannot escape the store.

Size: one interface and its two backends side by side, so they stay alike.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Protocol, cast

from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from shared.config import Settings, get_settings

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_KEY_BYTES = 1024


class InvalidKey(ValueError):
    """An object key that could escape the store or that no backend accepts."""


class ObjectNotFound(KeyError):
    """No object under that key."""


def validate_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidKey("object key must be a non-empty string")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidKey(f"object key longer than {MAX_KEY_BYTES} bytes")
    if _CONTROL.search(key):
        raise InvalidKey(f"object key contains control characters: {key!r}")
    if key.startswith("/") or "\\" in key:
        raise InvalidKey(f"object key must be relative and use '/': {key!r}")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts[:-1]) or parts[-1] in ("", ".", ".."):
        raise InvalidKey(f"object key has an empty, '.' or '..' part: {key!r}")
    return key


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object as a listing shows it: its key, size and when it was last written."""

    key: str
    size: int
    modified: datetime  # timezone-aware (UTC)


def validate_prefix(prefix: str) -> str:
    return (
        ""
        if prefix == ""
        else validate_key(prefix.rstrip("/")) + ("/" if prefix.endswith("/") else "")
    )


class ObjectStore(Protocol):
    def put_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None: ...
    def put_file(
        self, key: str, path: str | Path, content_type: str = "application/octet-stream"
    ) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def open(self, key: str) -> BinaryIO: ...
    def download(self, key: str, path: str | Path) -> Path: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str = "") -> Iterator[str]: ...
    def list_info(self, prefix: str = "") -> Iterator[ObjectInfo]: ...
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def presign(self, key: str, expires_s: int | None = None) -> str: ...
    def local_path(self, key: str) -> Path | None: ...


class _PrefixDelete:
    def delete_prefix(self, prefix: str) -> int:
        keys = list(self.list(prefix))  # type: ignore[attr-defined]
        for key in keys:
            self.delete(key)  # type: ignore[attr-defined]
        return len(keys)


class LocalStore(_PrefixDelete):
    """Objects as files under ``root``; puts are atomic (temp file + rename)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if self.root not in path.parents:
            raise InvalidKey(f"object key escapes the store: {key!r}")
        return path

    def put_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        self._atomic_write(key, lambda fh: fh.write(data))

    def put_file(
        self, key: str, path: str | Path, content_type: str = "application/octet-stream"
    ) -> None:
        with open(path, "rb") as src:
            self._atomic_write(key, lambda fh: shutil.copyfileobj(src, fh, 1 << 20))

    def _atomic_write(self, key: str, write) -> None:  # noqa: ANN001
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_bytes(self, key: str) -> bytes:
        with self.open(key) as fh:
            return fh.read()

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        return open(path, "rb")

    def download(self, key: str, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.open(key) as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        return path

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> Iterator[str]:
        prefix = validate_prefix(prefix)
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                key = os.path.relpath(os.path.join(dirpath, name), self.root).replace(os.sep, "/")
                if key.startswith(prefix):
                    yield key

    def list_info(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for key in self.list(prefix):
            try:
                st = self._path(key).stat()
            except FileNotFoundError:  # deleted since it was listed
                continue
            yield ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def presign(self, key: str, expires_s: int | None = None) -> str:
        return self._path(key).as_uri()

    def local_path(self, key: str) -> Path | None:
        return self._path(key)


def _transient(exc: BaseException) -> bool:
    from minio.error import S3Error
    from urllib3.exceptions import HTTPError

    if isinstance(exc, S3Error):
        return exc.code in {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"}
    return isinstance(exc, (HTTPError, ConnectionError, TimeoutError))


class _Transient(retry_if_exception_type):
    def __init__(self) -> None:
        super().__init__(Exception)

    def __call__(self, retry_state) -> bool:  # noqa: ANN001
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        return exc is not None and _transient(exc)


_retry = retry(
    retry=_Transient(),
    stop=stop_after_attempt(6),
    wait=wait_exponential(multiplier=0.2, max=5),
    reraise=True,
)


class S3Store(_PrefixDelete):
    """Objects in one S3 bucket through the ``minio`` client; transient errors retried with
    backoff."""

    def __init__(self, client, bucket: str, presign_expiry_s: int = 3600):  # noqa: ANN001
        self.client = client
        self.bucket = bucket
        self.presign_expiry_s = presign_expiry_s
        self._ensure_bucket()

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        from minio import Minio

        st = settings.storage
        client = Minio(
            st.endpoint,
            access_key=st.access_key,
            secret_key=st.secret_key.get_secret_value(),
            secure=st.secure,
            region=st.region,
        )
        return cls(client, st.bucket, st.presign_expiry_s)

    @_retry
    def _ensure_bucket(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            self.client.make_bucket(self.bucket)

    @_retry
    def put_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        self.client.put_object(
            self.bucket, validate_key(key), io.BytesIO(data), len(data), content_type=content_type
        )

    @_retry
    def put_file(
        self, key: str, path: str | Path, content_type: str = "application/octet-stream"
    ) -> None:
        self.client.fput_object(
            self.bucket, validate_key(key), str(path), content_type=content_type
        )

    def get_bytes(self, key: str) -> bytes:
        with self.open(key) as fh:
            return fh.read()

    @_retry
    def open(self, key: str) -> BinaryIO:
        from minio.error import S3Error

        try:
            resp = self.client.get_object(self.bucket, validate_key(key))
        except S3Error as exc:
            if exc.code in {"NoSuchKey", "NoSuchObject"}:
                raise ObjectNotFound(key) from exc
            raise
        return cast(BinaryIO, _StreamingBody(resp))  # a RawIOBase: BinaryIO's methods

    @_retry
    def download(self, key: str, path: str | Path) -> Path:
        self.client.fget_object(self.bucket, validate_key(key), str(path))
        return Path(path)

    @_retry
    def exists(self, key: str) -> bool:
        from minio.error import S3Error

        try:
            self.client.stat_object(self.bucket, validate_key(key))
            return True
        except S3Error as exc:
            if exc.code in {"NoSuchKey", "NoSuchObject", "NotFound"}:
                return False
            raise

    def list(self, prefix: str = "") -> Iterator[str]:
        for obj in self.client.list_objects(
            self.bucket, prefix=validate_prefix(prefix) or None, recursive=True
        ):
            yield obj.object_name

    def list_info(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for obj in self.client.list_objects(
            self.bucket, prefix=validate_prefix(prefix) or None, recursive=True
        ):
            modified = obj.last_modified or datetime.now(
                UTC
            )  # no date: as new as can be (never too old)
            yield ObjectInfo(
                obj.object_name,
                obj.size or 0,
                modified if modified.tzinfo else modified.replace(tzinfo=UTC),
            )

    @_retry
    def delete(self, key: str) -> None:
        self.client.remove_object(self.bucket, validate_key(key))

    def presign(self, key: str, expires_s: int | None = None) -> str:
        return self.client.presigned_get_object(
            self.bucket,
            validate_key(key),
            expires=timedelta(seconds=expires_s or self.presign_expiry_s),
        )

    def local_path(self, key: str) -> Path | None:
        return None


class _StreamingBody(io.RawIOBase):
    """A readable file over a urllib3 response that releases the connection on close."""

    def __init__(self, resp):  # noqa: ANN001
        self._resp = resp

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # noqa: ANN001
        data = self._resp.read(len(b))
        b[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        return self._resp.read() if size is None or size < 0 else self._resp.read(size)

    def close(self) -> None:
        if not self.closed:
            self._resp.close()
            self._resp.release_conn()
        super().close()


def get_store(settings: Settings | None = None) -> ObjectStore:
    settings = settings or get_settings()
    if settings.storage.backend == "s3":
        return S3Store.from_settings(settings)
    return LocalStore(settings.storage.local_root)


def download_prefix(prefix: str, dest: str | Path, store: ObjectStore | None = None) -> list[Path]:
    """Mirror every object under ``prefix`` (not empty) into the folder ``dest``, sub-paths kept."""
    if not prefix.strip("/"):
        raise InvalidKey("download_prefix needs a non-empty prefix")
    store = store or get_store()
    root = validate_prefix(prefix.rstrip("/") + "/")
    return [store.download(key, Path(dest) / key[len(root) :]) for key in store.list(root)]


def checkpoint_adapter(checkpoint: str, settings: Settings | None = None) -> Path:
    """The LoRA adapter of a training checkpoint (``checkpoints/<run>/<step>``, its adapter under
    ``<checkpoint>/adapter/`` as the trainer writes it) as a local folder: downloaded once into
    ``<home>/cache/<checkpoint>/adapter``, so a service on another host than the trainer (evaluator,
    indexer) loads what ``checkpoint.ready`` named."""
    settings = settings or get_settings()
    key = validate_key(checkpoint.rstrip("/"))
    dest = settings.home_path / "cache" / key / "adapter"
    if (dest / "adapter_config.json").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=dest.parent, prefix="adapter.partial-"))
    try:
        files = download_prefix(f"{key}/adapter/", partial, get_store(settings))
        if not any(f.name == "adapter_config.json" for f in files):
            raise FileNotFoundError(
                f"checkpoint {checkpoint!r} has no adapter in the store "
                f"({key}/adapter/adapter_config.json)"
            )
        # published by one rename, complete or not at all: a download killed half-way is never
        # taken for an adapter, and a finished folder is never removed (a process may be reading
        # it: a concurrent download of the same checkpoint that finished first wins)
        try:
            os.replace(partial, dest)
        except OSError:
            if (dest / "adapter_config.json").is_file():
                return dest
            shutil.rmtree(dest, ignore_errors=True)  # a leftover without a config: never read
            os.replace(partial, dest)
    except OSError:
        if not (dest / "adapter_config.json").is_file():
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return dest
