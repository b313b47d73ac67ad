"""Giving the memory of freed pixels back to the operating system.

A decoded 96 MP image is 288 MB in blocks Pillow gets from ``malloc``. When it is dropped
(the local backend has encoded its result, the widget has made its preview), glibc keeps
most of those pages mapped for reuse, so the kernel's resident memory stays near its peak
for good, though nothing uses it. ``malloc_trim(0)`` returns them (every arena, the worker
threads' too); it costs a few milliseconds and runs only after a full-size image was
dropped. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import sys
from functools import cache
from typing import Any

__all__ = ["release_freed_memory"]


@cache
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None  # musl has none


def release_freed_memory() -> None:
    """Return freed heap pages to the OS (glibc); a no-op where that is not possible."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
