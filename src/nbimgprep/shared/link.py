"""SharedLink: the local store in front of a shared tier, as the engine uses them together.

sccache's multi-level cache in two calls. :meth:`SharedLink.fetch` answers a local miss from the
shared tier and copies the hit into the local store, so the next lookup is local;
:meth:`SharedLink.publish` writes a new local entry through to the shared tier. Neither ever
raises because of the shared tier: a tier that is down makes ``fetch`` a miss and ``publish`` a
no-op (with the one warning of :mod:`.health`), and the local result always stands.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import SharedTierError, StoreError
from ..operations import Endpoint
from ..store import Entry, ResultMeta, ResultStore
from ..store.files import uncached_copy
from .records import SharedRecord
from .tier import DEFAULT_TIMEOUT, SharedTier

__all__ = ["CACHE_TIMEOUT_ENV", "CACHE_URL_ENV", "SharedLink", "configured_tier"]

CACHE_URL_ENV = "NBIMGPREP_CACHE_URL"
CACHE_TIMEOUT_ENV = "NBIMGPREP_CACHE_TIMEOUT"


@dataclass
class SharedLink:
    """A shared tier and the local store it feeds."""

    tier: SharedTier
    store: ResultStore

    @classmethod
    def configured(
        cls,
        shared: str | SharedTier | None,
        options: Mapping[str, Any] | None,
        store: ResultStore,
        environ: Mapping[str, str],
        timeout: float = DEFAULT_TIMEOUT,
    ) -> SharedLink | None:
        """The link a Processor was asked for: ``shared`` (a URL or a tier), else
        ``$NBIMGPREP_CACHE_URL``, else None (no shared tier). ``shared=""`` turns it off.
        ``$NBIMGPREP_CACHE_TIMEOUT`` (seconds) bounds a lookup."""
        if isinstance(shared, SharedTier):
            return cls(shared, store)
        url = environ.get(CACHE_URL_ENV, "") if shared is None else shared
        if not url:
            return None
        return cls(configured_tier(url, options, environ, timeout), store)

    def fetch(self, key: str) -> Entry | None:
        """The shared tier's result for ``key``, now also in the local store; or None."""
        hit = self.tier.lookup(key)
        if hit is None:
            return None
        record = hit.record
        meta = ResultMeta(
            image_hash=record.image_hash,
            operation=record.operation,
            endpoint=Endpoint(record.endpoint, dict(record.endpoint_arguments)),
            params=dict(record.params),
            backend=record.backend,
            width=record.width,
            height=record.height,
            content_type=record.content_type,
            backend_seconds=record.backend_seconds,
        )
        try:
            return self.store.put(key, hit.data, meta)
        except StoreError:
            return _uncached_entry(record, hit.data)  # a read-only local store: still a hit

    def publish(self, entry: Entry, data: bytes, *, replace: bool = False) -> bool:
        """Write ``entry`` (just put locally, with these bytes) through to the shared tier."""
        return self.tier.put(SharedRecord.from_entry(entry), data, replace=replace)


def configured_tier(
    url: str,
    options: Mapping[str, Any] | None,
    environ: Mapping[str, str],
    timeout: float = DEFAULT_TIMEOUT,
) -> SharedTier:
    """The tier at ``url``, its lookup timeout from ``$NBIMGPREP_CACHE_TIMEOUT`` if set."""
    timeout = _seconds(environ.get(CACHE_TIMEOUT_ENV), CACHE_TIMEOUT_ENV) or timeout
    return SharedTier(url, options=options, timeout=timeout, environ=environ)


def _uncached_entry(record: SharedRecord, data: bytes) -> Entry:
    """An entry for a shared hit the local store could not keep, served from a temp file."""
    copy = uncached_copy(data, f"nbimgprep-{record.operation}-")
    return record.to_entry(copy, created=time.time())


def _seconds(text: str | None, name: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise SharedTierError(f"{name} must be a number of seconds above 0, not {text!r}.")
    return value
