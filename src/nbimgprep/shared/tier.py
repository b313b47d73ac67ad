"""SharedTier: results in S3-compatible object storage, shared by every machine of a team.

Layout under ``s3://bucket/prefix``::

    blobs/ab/ab12...ef        result bytes, named by their own SHA-256 (immutable)
    records/9f3c...01.json    one small record per cache key, pointing to its blob

The bazel-remote split: blobs are content-addressed, so writing one is put-if-absent and two
writers of the same bytes cannot disagree; a record is written only after its blob is there, so
no record ever points to missing bytes. Both are written with ``If-None-Match: *`` where the
server honours it; "already exists" (412, 409, and the errno values s3fs maps those to) counts as
success once the object is re-read and found sound, and a server that refuses conditional writes
gets a plain write (still safe: names are content-addressed or carry a whole, valid record).

A miss costs one request (the record), a hit two (record, blob); nothing is ever listed on the
lookup path, and no listing cache is consulted. Fetched bytes are hashed before they are served:
a blob that does not match its name is a miss and a warning, never a hit.

A tier that is unreachable, denied or slower than ``timeout`` never breaks a call: lookups answer
None and puts are skipped, with one warning per process (see :mod:`.health`), until
``retry_after`` seconds have passed.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .connection import (
    FilesystemPerProcess,
    SharedLocation,
    redact,
    require_s3fs,
    storage_options,
)
from .health import OUTAGES, warn
from .records import SharedRecord, is_digest

__all__ = ["SharedHit", "SharedTier"]

DEFAULT_TIMEOUT = 2.0
DEFAULT_RETRY_AFTER = 60.0
MIN_TRANSFER_RATE = 2**20  # bytes/s a blob download may fall to before it counts as too slow
_EXISTS = (errno.EINVAL, errno.EBUSY, errno.EEXIST, errno.ENOSYS, errno.EIO)
T = TypeVar("T")


@dataclass(frozen=True)
class SharedHit:
    """A record and the bytes of its blob, checked against the blob's SHA-256."""

    record: SharedRecord
    data: bytes


class SharedTier:
    """The shared tier at ``url`` (``s3://bucket/prefix``).

    ``options`` are fsspec/s3fs storage options (``endpoint_url``, ``key``, ``secret``,
    ``profile``, ``client_kwargs``...); ``timeout`` bounds a lookup (seconds, default 2).
    """

    def __init__(
        self,
        url: str,
        *,
        options: Mapping[str, Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry_after: float = DEFAULT_RETRY_AFTER,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        require_s3fs()
        self.location = SharedLocation.parse(url)
        self.timeout = float(timeout)
        self.retry_after = float(retry_after)
        self._clock = clock
        self._suspect: set[str] = set()  # blobs seen damaged: rewritten, never trusted by size
        env = os.environ if environ is None else environ
        self._fs = FilesystemPerProcess(storage_options(options, env, self.timeout))

    @property
    def url(self) -> str:
        return self.location.url

    def __repr__(self) -> str:
        return f"SharedTier({self.url!r})"

    def filesystem(self) -> Any:
        """This process's s3fs filesystem (the maintenance commands list and delete with it)."""
        return self._fs.get()

    def reachable(self) -> bool:
        """False while the tier is in its quiet period after a failure (lookups then answer
        None without a request); a plan says so instead of counting on it."""
        return not OUTAGES.down(self.url, self._clock())

    def forget_outage(self) -> None:
        """Try the tier again at once, without waiting out ``retry_after`` (after a fix)."""
        OUTAGES.forget(self.url)

    def explain(self, exc: BaseException) -> str:
        """A failure in words fit to show: no secret, one line."""
        return self._reason(exc)

    # -- names ------------------------------------------------------------------------------

    def record_path(self, key: str) -> str:
        if not is_digest(key):
            raise ValueError(f"not a cache key: {key[:80]!r}")
        return self.location.path("records", f"{key}.json")

    def blob_path(self, digest: str) -> str:
        if not is_digest(digest):
            raise ValueError(f"not a SHA-256: {digest[:80]!r}")
        return self.location.path("blobs", digest[:2], digest)

    # -- the hot path -----------------------------------------------------------------------

    def lookup(self, key: str) -> SharedHit | None:
        """The record and checked bytes for ``key``, or None (a miss, or the tier is down)."""
        record = self.record(key)
        if record is None:
            return None
        data = self._guarded(
            lambda: self._read(self.blob_path(record.blob), self._blob_timeout(record.size)),
            None,
        )
        if data is None:
            return None
        if len(data) != record.size or hashlib.sha256(data).hexdigest() != record.blob:
            self._suspect.add(record.blob)
            warn(
                f"The shared cache {self.url} holds a damaged result for key {key[:12]} (its "
                "bytes do not match their SHA-256); not served. It is made afresh and the "
                "good copy uploaded."
            )
            return None
        return SharedHit(record, data)

    def record(self, key: str) -> SharedRecord | None:
        """The record for ``key`` alone (one request), or None."""
        raw = self._guarded(lambda: self._read(self.record_path(key), self.timeout), None)
        if raw is None:
            return None
        try:
            return SharedRecord.from_json(raw, key)
        except ValueError as exc:
            warn(
                f"The shared cache {self.url} has an unreadable record for key {key[:12]} "
                f"({exc}); treated as a miss."
            )
            return None

    def put(self, record: SharedRecord, data: bytes, *, replace: bool = False) -> bool:
        """Upload ``data`` and then its record. True once both are there (ours, or an equal
        one another writer put first); False if the tier is down. ``replace`` overwrites an
        existing record (a refreshed result)."""
        if hashlib.sha256(data).hexdigest() != record.blob or len(data) != record.size:
            raise ValueError("record does not describe these bytes")
        return self._guarded(lambda: self._put(record, data, replace), False)

    def _put(self, record: SharedRecord, data: bytes, replace: bool) -> bool:
        blob = self.blob_path(record.blob)
        if record.blob in self._suspect:
            self._write(blob, data, "overwrite")
            self._suspect.discard(record.blob)
        else:
            self._write_once(blob, data, lambda: self._size(blob) == len(data))
        path = self.record_path(record.key)
        if replace:
            self._write(path, record.to_json(), "overwrite")
        else:
            self._write_once(path, record.to_json(), lambda: self._sound(record.key))
        return True

    def _sound(self, key: str) -> bool:
        """Whether the record now stored for ``key`` parses and its blob is there."""
        try:
            existing = SharedRecord.from_json(self._read(self.record_path(key), self.timeout), key)
        except (FileNotFoundError, ValueError):
            return False
        if existing.blob in self._suspect:
            return False
        return self._size(self.blob_path(existing.blob)) == existing.size

    # -- requests ---------------------------------------------------------------------------

    def _write_once(self, path: str, data: bytes, already_sound: Callable[[], bool]) -> None:
        """Create ``path`` unless it exists; if it exists (or the server answers something
        that may mean so), keep it when it is sound, else write it plainly."""
        try:
            self._write(path, data, "create")
            return
        except FileExistsError:
            pass
        except OSError as exc:
            if isinstance(exc, FileNotFoundError | PermissionError) or exc.errno not in _EXISTS:
                raise
        if not already_sound():
            self._write(path, data, "overwrite")

    def _write(self, path: str, data: bytes, mode: str) -> None:
        timeout = self._blob_timeout(len(data))
        self._fs.get().pipe_file(path, data, mode=mode, timeout=timeout)

    def _read(self, path: str, timeout: float) -> bytes:
        # One GET: with max_concurrency > 1, s3fs would first HEAD the object (and list its
        # "folder" when it is missing), tripling what a miss costs.
        data: bytes = self._fs.get().cat_file(path, max_concurrency=1, timeout=timeout)
        return data

    def _size(self, path: str) -> int | None:
        try:
            info = self._fs.get().info(path, timeout=self.timeout)
        except FileNotFoundError:
            return None
        size = info.get("size")
        return int(size) if size is not None else None

    def _blob_timeout(self, size: int) -> float:
        return self.timeout + size / MIN_TRANSFER_RATE

    def _guarded(self, call: Callable[[], T], fallback: T) -> T:
        """Run one request; a missing object is ``fallback``, any failure marks the tier down
        (one warning per process) and is ``fallback`` too."""
        if OUTAGES.down(self.url, self._clock()):
            return fallback
        try:
            return call()
        except FileNotFoundError:
            return fallback
        except Exception as exc:
            OUTAGES.failed(self.url, self._reason(exc), self._clock(), self.retry_after)
            return fallback

    def _reason(self, exc: BaseException) -> str:
        name = type(exc).__name__
        if name in ("FSTimeoutError", "TimeoutError"):
            return f"no answer within {self.timeout:g} s"
        text = " ".join(str(exc).split())[:200] or name
        return redact(f"{name}: {text}", self._fs.options)
