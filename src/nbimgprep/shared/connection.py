"""Where the shared tier is and how to reach it: the URL, the storage options, the filesystem.

Credentials come from where AWS tools look for them (the environment, ``AWS_PROFILE`` and
``~/.aws``, an instance role) or from fsspec storage options; ``AWS_ENDPOINT_URL_S3`` /
``AWS_ENDPOINT_URL`` point at MinIO, R2, Ceph or any S3-compatible server. Credentials in the URL
itself are refused (URLs end up in reprs and messages). The options are never shown: only the
URL is, and :func:`redact` takes any secret value out of a server's error text.

fsspec filesystems are bound to the process (and the async ones to an event loop), so
:class:`FilesystemPerProcess` makes one per process on first use, with fsspec's instance cache and
listing cache off: every lookup reads the object itself, so a record another machine wrote a
moment ago is seen at once. Calls use fsspec's sync API, run from a worker thread by the engine;
its I/O runs on fsspec's own loop thread, so no caller's event loop is ever borrowed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import SharedTierError

__all__ = [
    "FilesystemPerProcess",
    "SharedLocation",
    "redact",
    "require_s3fs",
    "storage_options",
]

_SECRET_OPTIONS = ("secret", "token", "key", "aws_secret_access_key", "aws_session_token")


@dataclass(frozen=True)
class SharedLocation:
    """``s3://bucket/prefix``, split: the bucket and the prefix every object lives under."""

    url: str
    root: str  # "bucket/prefix", as fsspec names paths

    @classmethod
    def parse(cls, url: str) -> SharedLocation:
        text = str(url).strip()
        scheme, sep, rest = text.partition("://")
        if not sep or scheme.lower() not in ("s3", "s3a"):
            raise SharedTierError(
                f"The shared cache must be an s3:// URL such as s3://team-bucket/nbimgprep, "
                f"not {_shown(text)!r} (S3, MinIO, R2, Ceph and GCS all speak S3)."
            )
        bucket = rest.split("/", 1)[0]
        if "@" in bucket or ":" in bucket:
            raise SharedTierError(
                "Credentials do not belong in the shared cache URL: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or pass shared_options={'key': ..., "
                "'secret': ...}, and use s3://bucket/prefix."
            )
        root = rest.strip("/")
        if not bucket:
            raise SharedTierError(f"The shared cache URL {text!r} names no bucket.")
        return cls(url=f"s3://{root}", root=root)

    def path(self, *parts: str) -> str:
        return "/".join((self.root, *parts))


def _shown(text: str) -> str:
    """A URL fit to show: anything before an ``@`` (credentials) is dropped."""
    return text.rsplit("@", 1)[-1] if "@" in text else text


def storage_options(
    options: Mapping[str, Any] | None, environ: Mapping[str, str], timeout: float
) -> dict[str, Any]:
    """The s3fs options: the caller's, plus the endpoint from the environment and timeouts
    short enough that a dead server costs seconds, not minutes."""
    merged: dict[str, Any] = dict(options or {})
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    if endpoint and "endpoint_url" not in merged:
        merged["endpoint_url"] = endpoint
    config = dict(merged.pop("config_kwargs", None) or {})
    config.setdefault("connect_timeout", timeout)
    config.setdefault("read_timeout", max(timeout, 10.0))
    # botocore's own retries back off for seconds against a dead server; s3fs still retries
    # what is worth it (timeouts, SlowDown), quickly.
    config.setdefault("retries", {"total_max_attempts": 1, "mode": "standard"})
    merged["config_kwargs"] = config
    return merged


def redact(text: str, options: Mapping[str, Any]) -> str:
    """``text`` with every secret option value replaced by ``***``."""
    for name in _SECRET_OPTIONS:
        value = options.get(name)
        if isinstance(value, str) and len(value) >= 4:
            text = text.replace(value, "***")
    return text


class FilesystemPerProcess:
    """An s3fs filesystem made on first use in each process, never shared across a fork."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self._options = dict(options)
        self._lock = threading.Lock()
        self._fs: Any = None
        self._pid = 0

    def __repr__(self) -> str:  # the options hold credentials: never show them
        return "FilesystemPerProcess(...)"

    @property
    def options(self) -> Mapping[str, Any]:
        return self._options

    def get(self) -> Any:
        with self._lock:
            if self._fs is None or self._pid != os.getpid():
                self._fs, self._pid = _s3fs(self._options), os.getpid()
            return self._fs


def require_s3fs() -> None:
    """Raise :class:`SharedTierError` saying how to install s3fs, if it is missing."""
    try:
        import s3fs  # noqa: F401
    except ImportError:
        raise SharedTierError(
            "The shared cache needs s3fs: pip install 'nbimgprep[shared]'."
        ) from None


def _s3fs(options: Mapping[str, Any]) -> Any:
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False, **options)
    fs.retries = 2  # s3fs's own retries on top of botocore's: keep a dead server quick
    return fs
