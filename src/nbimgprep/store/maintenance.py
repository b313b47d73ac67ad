"""Looking after a store: what ``clean`` removes, what ``verify`` finds, and rebuilding the
index from the sidecars.

These are plain functions over the store's parts; :class:`~nbimgprep.store.ResultStore`
exposes them as ``clean``, ``verify`` and ``rebuild_index`` and does the removing itself.
"""

from __future__ import annotations

import sqlite3
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import StoreError
from .entry import Entry
from .files import StoreFiles, damage, has_size
from .index import Index

__all__ = ["DEFAULT_MAX_AGE_DAYS", "CleanOutcome", "VerifyOutcome"]

#: ``clean`` with no criterion removes entries unused for this many days, like the original
#: app's cleanup script (``--max-age-days``, default 30).
DEFAULT_MAX_AGE_DAYS = 30.0

DAY_SECONDS = 86400.0


@dataclass(frozen=True)
class CleanOutcome:
    """What a ``clean`` removed (or, with ``dry_run``, would remove) and the bytes freed;
    and the orphan result files (no entry pointed to them) it removed, and their bytes."""

    removed: list[Entry]
    freed_bytes: int
    dry_run: bool
    orphans: int = 0
    orphan_bytes: int = 0


@dataclass(frozen=True)
class VerifyOutcome:
    """What a ``verify`` re-hashed, the damaged entries with the reason, the index check,
    and the orphan result files (no entry points to them; ``clean`` removes them) it found."""

    checked: int
    damaged: list[tuple[Entry, str]]
    fixed: bool
    index_ok: bool = True
    orphans: int = 0
    orphan_bytes: int = 0

    @property
    def ok(self) -> int:
        return self.checked - len(self.damaged)


def choose_for_clean(
    entries: list[Entry],
    now: float,
    max_age_days: float | None,
    max_bytes: int | None,
    missing: bool,
) -> list[Entry]:
    """The entries any criterion selects, least recently used first.

    Unused for ``max_age_days`` (0: all); result file ``missing``; then the least recently
    used until the rest holds at most ``max_bytes`` (a file shared by entries counts once).
    """
    doomed: dict[str, Entry] = {}
    if max_age_days is not None:
        cutoff = now - float(max_age_days) * DAY_SECONDS
        doomed.update((e.key, e) for e in entries if e.last_used <= cutoff)
    if missing:
        doomed.update((e.key, e) for e in entries if not has_size(e.path, e.size))
    if max_bytes is not None:
        kept = sorted((e for e in entries if e.key not in doomed), key=lambda e: e.last_used)
        total = sum({e.path: e.size for e in kept}.values())
        for e in kept:
            if total <= max_bytes:
                break
            doomed[e.key] = e
            if not any(o.path == e.path and o.key not in doomed for o in kept):
                total -= e.size
    return sorted(doomed.values(), key=lambda e: e.last_used)


def freed_bytes(entries: Iterable[Entry]) -> int:
    """Bytes on disk the entries' result files take (a shared file once)."""
    return sum({e.path: e.size for e in entries}.values())


def find_damage(entries: Iterable[Entry]) -> list[tuple[Entry, str]]:
    """Re-hash every entry's result file: the damaged ones, with the reason."""
    return [(e, reason) for e in entries if (reason := damage(e))]


def reindex(index: Index, files: StoreFiles) -> int:
    """Insert a row for every readable sidecar. Returns how many."""
    entries = list(files.sidecars())
    with index.transaction() as con:
        index.insert(entries, con=con)
    return len(entries)


def open_index(index: Index, files: StoreFiles, stamp: int) -> None:
    """Open the index, whatever state it is in.

    A missing or empty index, or one with no rows while sidecars are on disk, is filled from
    the sidecars. A damaged one (garbage, truncated, a folder) is set aside as
    ``index.sqlite.damaged-STAMP`` and rebuilt, with one warning. A read-only store whose
    index cannot be read gets an index in memory. An index another process holds locked
    longer than the index's timeout is a :class:`StoreError`.
    """
    path = index.path
    missing = not path.exists()
    empty = path.is_file() and path.stat().st_size == 0
    if index.read_only:
        try:
            index.check()
            if index.count() or not files.has_sidecars():
                return
        except (sqlite3.Error, StoreError):
            pass
        index.use_memory()
        count = reindex(index, files)
        if count and not missing:
            _warn(
                f"The cache index {path} cannot be read and the store is read-only: "
                f"serving {count} entries from an index built in memory from the sidecars."
            )
        return
    if missing:
        files.make_private(path)
    try:
        index.check()
        if not (missing or empty or (index.count() == 0 and files.has_sidecars())):
            return
        count = reindex(index, files)
        if count and not missing:
            _warn(f"The cache index {path} was empty; rebuilt it from {count} sidecars.")
        elif count:
            _warn(f"The cache index {path} was missing; rebuilt it from {count} sidecars.")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise index.store_error(exc) from None
        _set_aside(index, files, stamp, exc)
    except sqlite3.DatabaseError as exc:
        _set_aside(index, files, stamp, exc)


def _set_aside(index: Index, files: StoreFiles, stamp: int, exc: Exception) -> None:
    index.close()
    path = index.path
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        damaged = path.with_name(path.name + suffix)
        if damaged.exists() or damaged.is_symlink():
            damaged.replace(damaged.with_name(f"{damaged.name}.damaged-{stamp}"))
    files.make_private(path)
    try:
        count = reindex(index, files)
    except sqlite3.Error as again:
        raise index.store_error(again) from None
    _warn(
        f"The cache index {path} was damaged ({exc}); it was set aside as {aside.name} "
        f"and rebuilt from {count} sidecars (hit counts restart at zero)."
    )


def _warn(message: str, depth: int = 0) -> None:
    """One warning, pointing at the code that opened the store."""
    warnings.warn(message, RuntimeWarning, stacklevel=4 + depth)
