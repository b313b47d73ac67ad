"""The per-key file lock: one backend call per key across processes sharing a store.

Two kernels asking for the same key: the second waits on this lock, then finds the first one's
result in the store (the engine re-checks after acquiring it). Within one process the flight
table (:mod:`nbimgprep.flights`) already lets one caller through; this lock is for the others.
"""

from __future__ import annotations

import os
from pathlib import Path

from filelock import AsyncFileLock

from .store.layout import create_file

__all__ = ["KeyLock"]


class KeyLock:
    """The per-key file lock (``filelock.AsyncFileLock``), awaited without blocking the loop.

    Two kernels asking for the same key: the second waits here, then finds the first one's
    result in the store. A store whose lock folder cannot be written still works, without
    the cross-process guarantee: the lock file is opened once first, and if that fails (a
    read-only store, a full disk) the call goes ahead unlocked rather than waiting for ever.
    """

    def __init__(self, path: Path, mode: int = 0o600) -> None:
        self._path = path
        self._mode = mode
        self._lock: AsyncFileLock | None = None

    async def __aenter__(self) -> None:
        if not _can_create(self._path, self._mode):
            return
        # Each attempt is one non-blocking flock() call: cheap enough to make on the loop.
        lock = AsyncFileLock(
            str(self._path), mode=self._mode, thread_local=False, run_in_executor=False
        )
        try:
            await lock.acquire(poll_interval=0.01)
        except OSError:
            return
        self._lock = lock

    async def __aexit__(self, *exc: object) -> None:
        if self._lock is not None:
            await self._lock.release()


def _can_create(path: Path, mode: int) -> bool:
    """Whether the lock file can be opened for writing (its folder made if need be). A new
    one is made with ``mode`` past the umask, so a group sharing the store can take it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # made by the store, with its mode
        fd = create_file(path, mode, os.O_RDWR)
        if fd is None:  # there already: its maker gave it its mode
            fd = os.open(path, os.O_RDWR | os.O_CREAT, mode)
        os.close(fd)
    except OSError:
        return False
    return True
