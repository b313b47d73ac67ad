"""Hit and miss counts, kept in memory and written to the index at most once a second.

A hit is a read: committing a write transaction per hit (to count it) made a lookup several
times slower than the read itself. Counts and "last used" times gather here and are written in
one transaction by a background thread, at most once per ``interval`` seconds after the first
uncounted lookup, and whenever the store is closed, garbage-collected or the process exits. The
store also writes them before anything that reads them (``stats``, ``entries``, ``clean``).
A process killed with SIGKILL loses at most the last ``interval`` of counts, never an entry.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from ..errors import StoreError
from .index import Index

__all__ = ["UsageCounter"]

#: Counts are written at most this often (seconds).
FLUSH_INTERVAL = 1.0


@dataclass
class _Pending:
    hits: dict[str, tuple[int, float]]
    misses: int = 0


class UsageCounter:
    """Counts lookups for one store's index; safe to use from many threads."""

    def __init__(self, index: Index, interval: float = FLUSH_INTERVAL) -> None:
        self._index = index
        self._interval = interval
        self._lock = threading.Lock()
        self._pending = _Pending({})
        self._pid = os.getpid()
        self._due = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def hit(self, key: str, now: float) -> int:
        """Count a hit on ``key`` at ``now``; returns the hits not yet written for it."""
        with self._lock:
            self._forget_parent()
            count, last = self._pending.hits.get(key, (0, now))
            self._pending.hits[key] = (count + 1, max(last, now))
            self._wake()
            return count + 1

    def miss(self) -> None:
        with self._lock:
            self._forget_parent()
            self._pending.misses += 1
            self._wake()

    def flush(self) -> None:
        """Write what was counted, in one transaction. If the index cannot be written now
        (locked for longer than its timeout), the counts wait for the next flush."""
        with self._lock:
            self._forget_parent()
            pending, self._pending = self._pending, _Pending({})
        if not pending.hits and not pending.misses:
            return
        try:
            self._index.add_usage(pending.hits, pending.misses)
        except StoreError:
            with self._lock:
                for key, (count, last) in pending.hits.items():
                    more, later = self._pending.hits.get(key, (0, last))
                    self._pending.hits[key] = (count + more, max(last, later))
                self._pending.misses += pending.misses

    def close(self) -> None:
        """Write what was counted and stop the background thread."""
        self._closed.set()
        self._due.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self.flush()

    def _wake(self) -> None:
        """Make sure the background writer will run (called holding the lock)."""
        if self._thread is None or not self._thread.is_alive():
            if self._closed.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="nbimgprep-usage", daemon=True)
            self._thread.start()
        self._due.set()

    def _run(self) -> None:
        while not self._closed.is_set():
            self._due.wait()
            self._closed.wait(self._interval)  # gather a second's worth of lookups
            self._due.clear()
            self.flush()

    def _forget_parent(self) -> None:
        """In a forked child, the parent's counts are the parent's to write (lock held)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._pending = _Pending({})
            self._thread = None
