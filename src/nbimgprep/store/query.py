"""``find``: what a user may type to name entries, turned into index queries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import AmbiguousPrefix, NotInCache
from .entry import Entry
from .index import Index

__all__ = ["find_entries"]


def find_entries(index: Index, query: str, hash_of: Callable[[Path], str]) -> list[Entry]:
    """Entries named by a key prefix, an image-hash prefix, or an image file's path
    (``hash_of`` gives an image file's hash). Raises :class:`NotInCache` or
    :class:`AmbiguousPrefix`."""
    candidate = Path(query).expanduser()
    if candidate.is_file():
        image_hash = hash_of(candidate)
        found = index.select("image_hash = ?", (image_hash,))
        if not found:
            raise NotInCache(f"{query}: this image has no cached results.")
        return found
    prefix = query.strip().lower()
    if not prefix or any(c not in "0123456789abcdef" for c in prefix):
        raise NotInCache(
            f"{query!r} is not a cache key, an image hash or the path of an image file."
        )
    by_key = index.select("key LIKE ?", (prefix + "%",))
    if len(by_key) == 1:
        return by_key
    if len(by_key) > 1:
        raise AmbiguousPrefix(query, sorted(e.key for e in by_key))
    by_image = index.select("image_hash LIKE ?", (prefix + "%",))
    images = sorted({e.image_hash for e in by_image})
    if len(images) > 1:
        raise AmbiguousPrefix(query, images)
    if not by_image:
        raise NotInCache(f"{query}: no cache key or image hash starts with this.")
    return by_image
