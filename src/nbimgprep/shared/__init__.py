"""The team-shared second tier: a cache on S3-compatible object storage behind the local store.

A result paid for on one machine is a hit on every other that points at the same
``s3://bucket/prefix``. :class:`SharedTier` is the tier itself (blobs by SHA-256, one record per
key); the engine looks there after a local miss and writes every new result through to it.
Needs the ``shared`` extra (s3fs).
"""

from __future__ import annotations

from .link import CACHE_TIMEOUT_ENV, CACHE_URL_ENV, SharedLink
from .records import SharedRecord
from .tier import SharedHit, SharedTier

__all__ = [
    "CACHE_TIMEOUT_ENV",
    "CACHE_URL_ENV",
    "SharedHit",
    "SharedLink",
    "SharedRecord",
    "SharedTier",
]
