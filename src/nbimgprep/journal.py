"""The request journal: remote requests submitted for a key and not yet stored.

A fal.ai request is paid for when it is submitted. If the kernel that submitted it dies
before the result is stored (a crash, a kill, a closed laptop), the request still runs and
its result still waits on fal.ai; without a record of it, the next run would submit it, and
pay for it, again. So the engine writes the request id here as soon as the submit returns and
removes it once the call is over (its result stored, or the call failed or was cancelled in a
live process). An entry left behind therefore means "the process making this call died". The
next call for that key, holding the key's lock (so the dead process cannot still be at it),
hands the id to the backend to re-attach to instead of submitting again.

One small JSON file per key, ``<store root>/journal/<key>.json``: written to a temporary name
and renamed (a kill never leaves half a file), with the modes of the rest of the store
(folder 0700 and files 0600, or the group's access in a root shared with a group). The journal
never fails a call: a store that cannot be written simply has no journal (the call runs,
without the crash guarantee), and an unreadable entry is ignored.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .store.layout import Modes, StoreLayout, create_file, create_folder

__all__ = ["Pending", "RequestJournal"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pending:
    """A request that was submitted for a key and whose result was never stored."""

    request_id: str
    endpoint: str
    submitted: float  # Unix time of the submit


class RequestJournal:
    """The pending remote requests of one store, by cache key."""

    def __init__(self, store_root: str | os.PathLike[str]) -> None:
        self._layout = StoreLayout(Path(store_root))
        self.folder = self._layout.journal

    def __repr__(self) -> str:
        return f"RequestJournal({str(self.folder)!r})"

    def read(self, key: str) -> Pending | None:
        """The pending request for ``key``, or None (none, or an entry that cannot be read)."""
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
            return Pending(str(data["request_id"]), str(data["endpoint"]), float(data["submitted"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.debug("journal entry for %s unreadable (%s)", key[:16], type(exc).__name__)
            return None

    def write(self, key: str, request_id: str, endpoint: str) -> None:
        """Record that ``request_id`` was submitted for ``key`` (atomic, best effort)."""
        record = {"request_id": request_id, "endpoint": endpoint, "submitted": time.time()}
        target = self._path(key)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            modes = Modes.of(self._layout.root)
            create_folder(self.folder, modes.folder)
            temporary.unlink(missing_ok=True)  # left by a process of this pid that died
            fd = create_file(temporary, modes.file)
            if fd is None:
                raise FileExistsError(temporary)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f)
            os.replace(temporary, target)
        except OSError as exc:
            logger.debug("journal entry for %s not written (%s)", key[:16], type(exc).__name__)
            with contextlib.suppress(OSError):
                temporary.unlink()

    def remove(self, key: str) -> None:
        """Forget the pending request for ``key`` (nothing to do if there is none)."""
        with contextlib.suppress(OSError):
            self._path(key).unlink()

    def pending_keys(self) -> list[str]:
        """The keys with a pending request, sorted."""
        try:
            return sorted(p.stem for p in self.folder.glob("*.json"))
        except OSError:
            return []

    def _path(self, key: str) -> Path:
        return self._layout.journal_path(key)
