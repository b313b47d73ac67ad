"""ResultStore: the persistent, content-addressed result cache on disk, as one object.

A facade over the store's parts: :mod:`.entry` (what an entry holds), :mod:`.files` (result
bytes, sidecars, atomic writes, the one unlink), :mod:`.index` (SQLite rows, counters, the
hash memo), :mod:`.maintenance` (clean, verify, rebuild) and :mod:`.legacy` (the original
app's JSON). A ``put`` writes the result bytes, then the sidecar, then the index row, so a
crash at any point leaves the old state or the new one. Only JSON and raw image bytes are
ever written or read: no pickle.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from ..errors import NotInCache, StoreError
from ..images import FileStamp, ImageRef
from . import legacy, maintenance, orphans
from .entry import EXTENSIONS, Entry, ResultMeta, check_tags
from .files import StoreFiles, default_cache_dir
from .index import HAS_TAG, Index, SortKey
from .legacy import ExportOutcome, ImportOutcome
from .maintenance import DEFAULT_MAX_AGE_DAYS, CleanOutcome, VerifyOutcome
from .memo import FileHashMemo
from .query import find_entries
from .stats import StoreStats
from .usage import FLUSH_INTERVAL, UsageCounter

__all__ = ["ResultStore"]


class ResultStore:
    """The on-disk cache. Safe to share between threads, processes and kernels.

    ``clock`` (seconds since the epoch) is injectable so that tests can age entries.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
        lock_timeout: float = 30.0,
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        if root is not None and not str(os.fspath(root)).strip():
            raise StoreError(
                "The cache directory is an empty string. Pass cache_dir= a folder (or leave it "
                "out for $NBIMGPREP_CACHE_DIR or ./.cache/nbimgprep)."
            )
        self.root = Path(root).expanduser() if root is not None else default_cache_dir(environ)
        self.root = self.root.absolute()
        self.clock = clock
        self._files = StoreFiles(self.root)
        self._files.create()
        self._index = Index(
            self.index_path,
            self._files.result_path,
            read_only=self._files.read_only,
            timeout=lock_timeout,
        )
        maintenance.open_index(self._index, self._files, stamp=int(clock()))
        self._memo = FileHashMemo(self._index)
        self._usage = UsageCounter(self._index, flush_interval)
        # Counts not yet written are written when the store goes away or the process exits.
        weakref.finalize(self, self._usage.close)

    def __repr__(self) -> str:
        return f"ResultStore({str(self.root)!r})"

    @property
    def index_path(self) -> Path:
        return self._files.layout.index

    @property
    def read_only(self) -> bool:
        """True for a store this process cannot write to: hits are served (not counted),
        nothing is stored or removed."""
        return self._files.read_only

    @property
    def file_mode(self) -> int:
        """The mode the store's files are made with: 0600, or 0660 in a group-shared root."""
        return self._files.file_mode

    def lock_path(self, key: str) -> Path:
        """The per-key lock file that makes one backend call per key across processes
        (to be created with :attr:`file_mode`)."""
        return self._files.lock_path(key)

    def close(self) -> None:
        """Write the hit counts not yet written and close the index's connections (the store
        opens them again if used after this)."""
        self._usage.close()
        self._index.close()

    # -- the hot path -------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        """The entry for ``key`` as recorded, without checking its file or counting a hit."""
        return self._index.get(key)

    def lookup(self, key: str, *, count_miss: bool = True) -> Entry | None:
        """The entry for ``key`` if its result file is the file that was stored; counts a hit
        or a miss (``count_miss=False`` for a re-check whose miss was already counted).

        The file's stat signature is compared with the one recorded when it was stored; if it
        changed, the file is re-hashed. An entry whose file is missing or no longer matches is
        dropped, and is a miss. An entry whose sidecar exists but whose index row does not (a
        crash between the two, or a rebuilt index) is re-indexed and served.
        """
        found = self._index.get_with_stamp(key)
        entry, stamp = found if found is not None else (self._adopt_sidecar(key), None)
        if entry is not None:
            damage, changed = self._files.changed_since(entry, stamp)
            if changed is not None:  # re-hashed and found the same: remember its new stamp
                with contextlib.suppress(StoreError):
                    self._index.record_stamp(entry.path.name, changed)
            if damage is not None:
                if not self.read_only:
                    self._remove([entry], also_shared_files=damage != "missing")
                entry = None
        if self.read_only:
            return entry  # nothing is counted in a store that cannot be written
        if entry is None:
            if count_miss:
                self._usage.miss()
            return None
        now = self.clock()
        uncounted = self._usage.hit(key, now)
        return replace(entry, hits=entry.hits + uncounted, last_hit=now)

    def _adopt_sidecar(self, key: str) -> Entry | None:
        entry = self._files.sidecar_of(key)
        if entry is not None and not self.read_only:
            self._index.insert([entry])
        return entry

    def put(self, key: str, data: bytes, meta: ResultMeta) -> Entry:
        """Store ``data`` as the result for ``key``, replacing any earlier entry. Atomic."""
        if self.read_only:
            raise StoreError(f"The cache at {self.root} is read-only.")
        digest = hashlib.sha256(data).hexdigest()
        name = digest + EXTENSIONS.get(meta.content_type or "", ".png")
        entry = Entry(
            key=key,
            image_hash=meta.image_hash,
            operation=meta.operation,
            endpoint=meta.endpoint.id,
            endpoint_arguments=dict(meta.endpoint.arguments),
            params=dict(meta.params),
            backend=meta.backend,
            path=self._files.result_path(name),
            result_sha256=digest,
            size=len(data),
            width=meta.width,
            height=meta.height,
            content_type=meta.content_type,
            created=self.clock() if meta.created is None else meta.created,
            backend_seconds=meta.backend_seconds,
            request_id=meta.request_id,
            remote_url=meta.remote_url,
            source=meta.source,
        )
        try:
            stamp = self._files.write_result(entry, data)
            self._files.write_sidecar(entry)
            previous = self._index.get(key)
            self._index.insert([entry], [stamp])
            if not entry.path.exists():  # a clean removed the file before the row was in
                stamp = self._files.write_result(entry, data)
                self._index.record_stamp(entry.path.name, stamp)
        except (OSError, sqlite3.Error, StoreError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise StoreError(f"Cannot write to the cache at {self.root}: {reason}") from exc
        if previous is not None and previous.path != entry.path:
            self._index.unlink_unreferenced([previous.path], self._files.unlink)
        return entry

    # -- the hash memo (ImageRef's HashMemo) ------------------------------------------------

    def get_hash(self, stamp: FileStamp) -> str | None:
        return self._memo.get_hash(stamp)

    def put_hash(self, stamp: FileStamp, sha256: str) -> None:
        self._memo.put_hash(stamp, sha256)

    # -- listing and finding ----------------------------------------------------------------

    def entries(
        self,
        op: str | None = None,
        limit: int | None = None,
        sort: SortKey = "age",
        tag: str | None = None,
    ) -> list[Entry]:
        """Entries, newest first (``sort="age"``), most hit first, or largest first; only
        those of operation ``op``, or carrying ``tag``, when given."""
        self._usage.flush()
        conditions, args = [], []
        if op is not None:
            conditions.append("operation = ?")
            args.append(op)
        if tag is not None:
            conditions.append(HAS_TAG)
            args.append(tag)
        return self._index.select(" AND ".join(conditions), args, sort=sort, limit=limit)

    def tagged(self, tag: str) -> set[str]:
        """The keys of the entries carrying ``tag``: one query, no entry built."""
        return self._index.keys_tagged(tag)

    def tag(self, key: str, *tags: str) -> Entry:
        """Add ``tags`` to the entry for ``key`` (kept in its sidecar, so they survive a
        rebuild). Tags never change what a lookup returns; a new result for the key (a
        ``refresh``) starts with none."""
        entry = self._known(key)
        return self._retag(entry, tuple(sorted({*entry.tags, *check_tags(tags)})))

    def untag(self, key: str, *tags: str) -> Entry:
        """Remove ``tags`` from the entry for ``key`` (tags it does not carry are ignored)."""
        entry = self._known(key)
        gone = set(check_tags(tags))
        return self._retag(entry, tuple(t for t in entry.tags if t not in gone))

    def _known(self, key: str) -> Entry:
        entry = self._index.get(key)
        if entry is None:
            raise NotInCache(f"{key}: no cache entry has this key.")
        return entry

    def _retag(self, entry: Entry, tags: tuple[str, ...]) -> Entry:
        self._writable()
        tagged = replace(entry, tags=tags)
        try:
            self._files.write_sidecar(tagged)  # the truth first, then the index
        except OSError as exc:
            raise StoreError(f"Cannot write to the cache at {self.root}: {exc.strerror}") from exc
        self._index.set_tags(entry.key, tags)
        return tagged

    def __len__(self) -> int:
        return self._index.count()

    def find(self, query: str) -> list[Entry]:
        """Entries named by a key prefix, an image-hash prefix, or an image file's path.

        A key prefix names one entry; an image hash prefix or a path names every entry of that
        image. Raises :class:`NotInCache` or :class:`AmbiguousPrefix`.
        """
        return find_entries(self._index, query, lambda path: ImageRef(path, memo=self).sha256)

    def stats(self) -> StoreStats:
        """Entries, bytes on disk, hits, misses and backend seconds saved, per operation too."""
        self._usage.flush()
        return self._index.stats()

    # -- removing and looking after -----------------------------------------------------------

    def delete(self, key: str) -> Entry | None:
        """Remove one entry (its sidecar, and its result file unless another entry shares it)."""
        entry = self._index.get(key)
        if entry is None:
            return None
        self._remove([entry])
        return entry

    def clean(
        self,
        max_age_days: float | None = DEFAULT_MAX_AGE_DAYS,
        max_bytes: int | None = None,
        missing: bool = False,
        dry_run: bool = False,
    ) -> CleanOutcome:
        """Remove entries unused for ``max_age_days`` (0: all), whose file is ``missing``, and
        then the least recently used until the store holds at most ``max_bytes``. An entry goes
        if any criterion says so. Then the orphan result files no entry points to (left by a
        crash in the middle of a put) go, once an hour old. ``dry_run`` only reports. A
        read-only store removes nothing (a :class:`StoreError`); an entry whose sidecar cannot
        be removed is kept whole."""
        chosen = maintenance.choose_for_clean(
            self.entries(), self.clock(), max_age_days, max_bytes, missing
        )
        if dry_run:
            removed, swept = chosen, orphans.count_orphans(self._files, self._index)
        else:
            removed = self._remove(chosen)
            swept = orphans.sweep_orphans(self._files, self._index)
        return CleanOutcome(
            removed=removed,
            freed_bytes=maintenance.freed_bytes(removed),
            dry_run=dry_run,
            orphans=swept.count,
            orphan_bytes=swept.bytes,
        )

    def verify(self, fix: bool = True) -> VerifyOutcome:
        """Re-hash every result file; with ``fix``, drop entries whose file is missing or
        differs from what was recorded. Also checks the index's integrity, and counts the
        orphan result files no entry points to (``clean`` removes them). A read-only store
        only reports."""
        fix = fix and not self.read_only
        index_ok = self._index.integrity_ok()
        checked = self.entries()
        damaged = maintenance.find_damage(checked)
        if fix and damaged:
            self._remove([e for e, _ in damaged], also_shared_files=True)
        found = orphans.count_orphans(self._files, self._index)
        return VerifyOutcome(
            checked=len(checked),
            damaged=damaged,
            fixed=fix,
            index_ok=index_ok,
            orphans=found.count,
            orphan_bytes=found.bytes,
        )

    def rebuild_index(self) -> int:
        """Rebuild the index from the sidecars (hit counts restart at zero). Returns entries."""
        self._writable()
        self._index.clear()
        return maintenance.reindex(self._index, self._files)

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(f"The cache at {self.root} is read-only: nothing was changed.")

    def _remove(self, entries: Iterable[Entry], also_shared_files: bool = False) -> list[Entry]:
        """Remove entries: index rows, then sidecars, then result files nobody uses. An entry
        whose sidecar cannot be removed gets its row back, so the index and the files agree.
        Returns the entries removed."""
        self._writable()
        entries = list(entries)
        if not entries:
            return []
        self._index.delete(e.key for e in entries)
        removed, kept = [], []
        for e in entries:
            try:
                self._files.unlink(self._files.sidecar_path(e.key))
                removed.append(e)
            except OSError:
                kept.append(e)
        if kept:
            self._index.insert(kept)
        for e in removed:
            self._files.remove_idle_lock(e.key)
        paths = [e.path for e in removed]
        if also_shared_files:
            for p in set(paths):
                with contextlib.suppress(OSError):
                    self._files.unlink(p)
        else:
            self._index.unlink_unreferenced(paths, self._files.unlink)
        return removed

    # -- the original app's JSON format -------------------------------------------------------

    def export_legacy_json(self, path: str | os.PathLike[str]) -> ExportOutcome:
        """Write the original app's cache file; see :func:`.legacy.export_legacy_json`."""
        return legacy.export_legacy_json(self, path)

    def import_legacy_json(
        self, path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
    ) -> ImportOutcome:
        """Bring a cache from the original app in; see :func:`.legacy.import_legacy_json`."""
        return legacy.import_legacy_json(self, path, root)
