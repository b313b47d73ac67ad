"""ResultStore: the persistent, content-addressed result cache on disk.

Layout under the store root (``NBIMGPREP_CACHE_DIR``, default ``./.cache/nbimgprep``)::

    results/ab/ab12...ef.png    result bytes, named by their own SHA-256
    entries/9f/9f3c...01.json   one JSON sidecar per cache entry: the source of truth
    index.sqlite                SQLite (WAL) index over the sidecars, plus hit counters and
                                the file-hash memo; rebuildable from the sidecars
    locks/                      per-key lock files (one backend call per key across processes)
    tmp/                        files being written, renamed into place when complete

A ``put`` writes the result bytes to ``tmp/``, fsyncs and renames them; then the sidecar the
same way; the index row last. A crash at any point leaves the old state or the new one. A
``lookup`` serves an entry only if its result file exists with the recorded size. Only JSON and
raw image bytes are ever written or read: no pickle. Nothing outside the root is ever deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock
from filelock import Timeout as LockTimeout

from .errors import AmbiguousPrefix, NotInCache, StoreError
from .images import FileStamp, ImageRef, sha256_stream
from .operations import OPERATIONS, Endpoint, cache_key

__all__ = [
    "CleanReport",
    "Entry",
    "ImportReport",
    "ResultStore",
    "StoreStats",
    "VerifyReport",
    "default_cache_dir",
]

SCHEMA_VERSION = 1
EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}
SortKey = Literal["age", "hits", "size"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    image_hash TEXT NOT NULL,
    operation TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    endpoint_arguments TEXT NOT NULL,
    params TEXT NOT NULL,
    backend TEXT NOT NULL,
    result_sha256 TEXT NOT NULL,
    result_name TEXT NOT NULL,
    size INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    content_type TEXT,
    created REAL NOT NULL,
    last_hit REAL,
    hits INTEGER NOT NULL DEFAULT 0,
    backend_seconds REAL NOT NULL DEFAULT 0,
    request_id TEXT,
    remote_url TEXT,
    source TEXT
);
CREATE INDEX IF NOT EXISTS entries_image ON entries (image_hash);
CREATE INDEX IF NOT EXISTS entries_created ON entries (created);
CREATE INDEX IF NOT EXISTS entries_result ON entries (result_name);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS hash_memo (
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, inode INTEGER, sha256 TEXT
);
"""

_COLUMNS = [
    "key",
    "image_hash",
    "operation",
    "endpoint",
    "endpoint_arguments",
    "params",
    "backend",
    "result_sha256",
    "result_name",
    "size",
    "width",
    "height",
    "content_type",
    "created",
    "last_hit",
    "hits",
    "backend_seconds",
    "request_id",
    "remote_url",
    "source",
]


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``NBIMGPREP_CACHE_DIR`` if set, else ``.cache/nbimgprep`` under the working directory."""
    env = os.environ if environ is None else environ
    configured = env.get("NBIMGPREP_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.cwd() / ".cache" / "nbimgprep"


@dataclass(frozen=True)
class Entry:
    """One cached result: what was asked, what came back, and how it has been used."""

    key: str
    image_hash: str
    operation: str
    endpoint: str
    endpoint_arguments: dict[str, Any]
    params: dict[str, Any]
    backend: str
    path: Path
    result_sha256: str
    size: int
    width: int
    height: int
    content_type: str | None
    created: float
    last_hit: float | None = None
    hits: int = 0
    backend_seconds: float = 0.0
    request_id: str | None = None
    remote_url: str | None = None
    source: str | None = None

    @property
    def last_used(self) -> float:
        """When this entry was last written or served."""
        return max(self.created, self.last_hit or 0.0)

    def sidecar(self) -> dict[str, Any]:
        """The JSON the sidecar file holds (hits and last hit live in the index only)."""
        data = asdict(self)
        data["path"] = self.path.name
        data.pop("hits")
        data.pop("last_hit")
        data["schema"] = SCHEMA_VERSION
        return data


@dataclass(frozen=True)
class StoreStats:
    """Totals over the store; ``by_operation`` has the same figures per operation."""

    entries: int
    bytes: int
    hits: int
    misses: int
    seconds_saved: float
    by_operation: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def hit_rate(self) -> float:
        looked_up = self.hits + self.misses
        return self.hits / looked_up if looked_up else 0.0


@dataclass(frozen=True)
class CleanReport:
    removed: list[Entry]
    freed_bytes: int
    dry_run: bool


@dataclass(frozen=True)
class VerifyReport:
    checked: int
    damaged: list[tuple[Entry, str]]
    fixed: bool
    index_ok: bool = True

    @property
    def ok(self) -> int:
        return self.checked - len(self.damaged)


@dataclass(frozen=True)
class ImportReport:
    imported: int = 0
    already_present: int = 0
    skipped_missing: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)


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
    ) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir(environ)
        self.root = self.root.absolute()
        self.clock = clock
        self._local = threading.local()
        try:
            for sub in ("results", "entries", "locks", "tmp"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"Cannot create the cache directory {self.root} ({exc.strerror}). "
                "Set NBIMGPREP_CACHE_DIR or pass cache_dir= to a writable folder."
            ) from None
        self._open_index()

    def __repr__(self) -> str:
        return f"ResultStore({str(self.root)!r})"

    # -- the index connection: one per thread, reopened after fork -------------------------

    @property
    def index_path(self) -> Path:
        return self.root / "index.sqlite"

    def _open_index(self) -> None:
        fresh = not self.index_path.exists()
        try:
            con = self._con
            if fresh:
                self._reindex(con)
        except sqlite3.DatabaseError:
            self._replace_damaged_index()

    @property
    def _con(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None or getattr(self._local, "pid", None) != os.getpid():
            con = sqlite3.connect(self.index_path, timeout=30, isolation_level=None)
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.executescript(_SCHEMA)
            self._local.con = con
            self._local.pid = os.getpid()
        return con

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        con = self._con
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def _replace_damaged_index(self) -> None:
        stamp = int(self.clock())
        for suffix in ("", "-wal", "-shm"):
            damaged = self.root / f"index.sqlite{suffix}"
            if damaged.exists():
                damaged.replace(self.root / f"index.sqlite{suffix}.damaged-{stamp}")
        self._local.con = None
        self._reindex(self._con)

    def rebuild_index(self) -> int:
        """Rebuild the index from the sidecars (hit counts restart at zero). Returns entries."""
        with self._transaction() as con:
            con.execute("DELETE FROM entries")
        return self._reindex(self._con)

    def _reindex(self, con: sqlite3.Connection) -> int:
        count = 0
        for sidecar in (self.root / "entries").glob("*/*.json"):
            entry = self._read_sidecar(sidecar)
            if entry is not None:
                self._insert(con, entry)
                count += 1
        return count

    # -- entries <-> rows and sidecars -------------------------------------------------------

    def _entry_from_row(self, row: sqlite3.Row) -> Entry:
        name = row["result_name"]
        return Entry(
            key=row["key"],
            image_hash=row["image_hash"],
            operation=row["operation"],
            endpoint=row["endpoint"],
            endpoint_arguments=json.loads(row["endpoint_arguments"]),
            params=json.loads(row["params"]),
            backend=row["backend"],
            path=self._result_path(name),
            result_sha256=row["result_sha256"],
            size=row["size"],
            width=row["width"],
            height=row["height"],
            content_type=row["content_type"],
            created=row["created"],
            last_hit=row["last_hit"],
            hits=row["hits"],
            backend_seconds=row["backend_seconds"],
            request_id=row["request_id"],
            remote_url=row["remote_url"],
            source=row["source"],
        )

    def _insert(self, con: sqlite3.Connection, entry: Entry) -> None:
        values = {
            **asdict(entry),
            "endpoint_arguments": json.dumps(entry.endpoint_arguments, sort_keys=True),
            "params": json.dumps(entry.params, sort_keys=True),
            "result_name": entry.path.name,
        }
        con.execute(
            f"INSERT OR REPLACE INTO entries ({', '.join(_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in _COLUMNS)})",
            [values[c] for c in _COLUMNS],
        )

    def _read_sidecar(self, path: Path) -> Entry | None:
        try:
            data = json.loads(path.read_text())
            data.pop("schema", None)
            data["path"] = self._result_path(data["path"])
            return Entry(**data)
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def _result_path(self, name: str) -> Path:
        return self.root / "results" / name[:2] / name

    def _sidecar_path(self, key: str) -> Path:
        return self.root / "entries" / key[:2] / f"{key}.json"

    def lock_path(self, key: str) -> Path:
        """The per-key lock file that makes one backend call per key across processes."""
        return self.root / "locks" / f"{key}.lock"

    # -- the hot path -------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        """The entry for ``key`` as recorded, without checking its file or counting a hit."""
        row = self._con.execute("SELECT * FROM entries WHERE key = ?", (key,)).fetchone()
        return self._entry_from_row(row) if row is not None else None

    def lookup(self, key: str, *, count_miss: bool = True) -> Entry | None:
        """The entry for ``key`` if its result file is intact; counts a hit or a miss
        (``count_miss=False`` for a re-check whose miss was already counted).

        An entry whose file is missing or has the wrong size is dropped, and is a miss. An
        entry whose sidecar exists but whose index row does not (a crash between the two, or
        a rebuilt index) is re-indexed and served.
        """
        entry = self.get(key) or self._adopt_sidecar(key)
        if entry is not None and not _file_has_size(entry.path, entry.size):
            self.delete(key)
            entry = None
        if entry is None and not count_miss:
            return None
        now = self.clock()
        with self._transaction() as con:
            if entry is None:
                _bump(con, "misses", 1)
                return None
            con.execute(
                "UPDATE entries SET hits = hits + 1, last_hit = ? WHERE key = ?", (now, key)
            )
            _bump(con, "hits", 1)
        return replace(entry, hits=entry.hits + 1, last_hit=now)

    def _adopt_sidecar(self, key: str) -> Entry | None:
        sidecar = self._sidecar_path(key)
        if not sidecar.exists():
            return None
        entry = self._read_sidecar(sidecar)
        if entry is not None and entry.key == key:
            with self._transaction() as con:
                self._insert(con, entry)
            return entry
        return None

    def put(
        self,
        key: str,
        data: bytes,
        *,
        image_hash: str,
        operation: str,
        endpoint: Endpoint,
        params: Mapping[str, Any],
        backend: str,
        width: int,
        height: int,
        content_type: str | None = None,
        backend_seconds: float = 0.0,
        request_id: str | None = None,
        remote_url: str | None = None,
        source: str | None = None,
        created: float | None = None,
    ) -> Entry:
        """Store ``data`` as the result for ``key``, replacing any earlier entry. Atomic."""
        digest = hashlib.sha256(data).hexdigest()
        name = digest + EXTENSIONS.get(content_type or "", ".png")
        entry = Entry(
            key=key,
            image_hash=image_hash,
            operation=operation,
            endpoint=endpoint.id,
            endpoint_arguments=dict(endpoint.arguments),
            params=dict(params),
            backend=backend,
            path=self._result_path(name),
            result_sha256=digest,
            size=len(data),
            width=width,
            height=height,
            content_type=content_type,
            created=self.clock() if created is None else created,
            backend_seconds=backend_seconds,
            request_id=request_id,
            remote_url=remote_url,
            source=source,
        )
        try:
            if not _file_has_size(entry.path, entry.size):
                self._write_atomic(entry.path, data)
            sidecar = json.dumps(entry.sidecar(), sort_keys=True, indent=1).encode()
            self._write_atomic(self._sidecar_path(key), sidecar)
            previous = self.get(key)
            with self._transaction() as con:
                self._insert(con, entry)
        except (OSError, sqlite3.Error) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise StoreError(f"Cannot write to the cache at {self.root}: {reason}.") from exc
        if previous is not None and previous.path != entry.path:
            self._unlink_unreferenced([previous.path])
        return entry

    def _write_atomic(self, target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.root / "tmp", prefix=target.name[:16])
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    # -- the hash memo (ImageRef's HashMemo) ------------------------------------------------

    def get_hash(self, stamp: FileStamp) -> str | None:
        row = self._con.execute(
            "SELECT sha256 FROM hash_memo WHERE path = ? AND size = ? AND mtime_ns = ? "
            "AND inode = ?",
            (stamp.path, stamp.size, stamp.mtime_ns, stamp.inode),
        ).fetchone()
        return None if row is None else str(row[0])

    def put_hash(self, stamp: FileStamp, sha256: str) -> None:
        # The memo is an accelerator: a read-only store still hashes correctly without it.
        with contextlib.suppress(sqlite3.Error):
            self._con.execute(
                "INSERT OR REPLACE INTO hash_memo VALUES (?, ?, ?, ?, ?)",
                (stamp.path, stamp.size, stamp.mtime_ns, stamp.inode, sha256),
            )

    # -- listing and finding ----------------------------------------------------------------

    def entries(
        self, op: str | None = None, limit: int | None = None, sort: SortKey = "age"
    ) -> list[Entry]:
        """Entries, newest first (``sort="age"``), most hit first, or largest first."""
        order = {
            "age": "created DESC",
            "hits": "hits DESC, created DESC",
            "size": "size DESC",
        }.get(sort)
        if order is None:
            raise ValueError(f"sort must be one of age, hits, size, not {sort!r}")
        sql = "SELECT * FROM entries"
        args: list[Any] = []
        if op is not None:
            sql += " WHERE operation = ?"
            args.append(op)
        sql += f" ORDER BY {order}"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [self._entry_from_row(r) for r in self._con.execute(sql, args)]

    def __len__(self) -> int:
        return int(self._con.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def find(self, query: str) -> list[Entry]:
        """Entries named by a key prefix, an image-hash prefix, or an image file's path.

        A key prefix names one entry; an image hash prefix or a path names every entry of that
        image. Raises :class:`NotInCache` or :class:`AmbiguousPrefix`.
        """
        candidate = Path(query).expanduser()
        if candidate.is_file():
            image_hash = ImageRef(candidate, memo=self).sha256
            found = self._where("image_hash = ?", image_hash)
            if not found:
                raise NotInCache(f"{query}: this image has no cached results.")
            return found
        prefix = query.strip().lower()
        if not prefix or any(c not in "0123456789abcdef" for c in prefix):
            raise NotInCache(
                f"{query!r} is not a cache key, an image hash or the path of an image file."
            )
        by_key = self._where("key LIKE ?", prefix + "%")
        if len(by_key) == 1:
            return by_key
        if len(by_key) > 1:
            raise AmbiguousPrefix(query, sorted(e.key for e in by_key))
        by_image = self._where("image_hash LIKE ?", prefix + "%")
        images = sorted({e.image_hash for e in by_image})
        if len(images) > 1:
            raise AmbiguousPrefix(query, images)
        if not by_image:
            raise NotInCache(f"{query}: no cache key or image hash starts with this.")
        return by_image

    def _where(self, condition: str, *args: Any) -> list[Entry]:
        rows = self._con.execute(
            f"SELECT * FROM entries WHERE {condition} ORDER BY created DESC", args
        )
        return [self._entry_from_row(r) for r in rows]

    def stats(self) -> StoreStats:
        """Entries, bytes on disk, hits, misses and backend seconds saved, per operation too."""
        con = self._con
        counters = {r["name"]: r["value"] for r in con.execute("SELECT * FROM counters")}
        by_op: dict[str, dict[str, float]] = {}
        for row in con.execute(
            "SELECT operation, COUNT(*) AS n, SUM(hits) AS hits, "
            "SUM(hits * backend_seconds) AS saved FROM entries GROUP BY operation"
        ):
            by_op[row["operation"]] = {
                "entries": row["n"],
                "hits": row["hits"] or 0,
                "seconds_saved": row["saved"] or 0.0,
                "bytes": 0,
            }
        total_bytes = 0
        for row in con.execute(
            "SELECT operation, result_name, MAX(size) AS size FROM entries "
            "GROUP BY operation, result_name"
        ):
            by_op[row["operation"]]["bytes"] += row["size"]
        for row in con.execute(
            "SELECT SUM(size) FROM (SELECT MAX(size) AS size FROM entries GROUP BY result_name)"
        ):
            total_bytes = row[0] or 0
        return StoreStats(
            entries=len(self),
            bytes=int(total_bytes),
            hits=int(counters.get("hits", 0)),
            misses=int(counters.get("misses", 0)),
            seconds_saved=float(sum(v["seconds_saved"] for v in by_op.values())),
            by_operation=by_op,
        )

    # -- removing -----------------------------------------------------------------------------

    def delete(self, key: str) -> Entry | None:
        """Remove one entry (its sidecar, and its result file unless another entry shares it)."""
        entry = self.get(key)
        if entry is None:
            return None
        self._remove([entry])
        return entry

    def clean(
        self,
        max_age_days: float | None = 30,
        max_bytes: int | None = None,
        missing: bool = False,
        dry_run: bool = False,
    ) -> CleanReport:
        """Remove entries unused for ``max_age_days`` (0: all), whose file is ``missing``, and
        then the least recently used until the store holds at most ``max_bytes``. An entry goes
        if any criterion says so. ``dry_run`` only reports."""
        everything = self.entries()
        doomed: dict[str, Entry] = {}
        if max_age_days is not None:
            cutoff = self.clock() - float(max_age_days) * 86400
            doomed.update((e.key, e) for e in everything if e.last_used <= cutoff)
        if missing:
            doomed.update((e.key, e) for e in everything if not _file_has_size(e.path, e.size))
        if max_bytes is not None:
            kept = sorted((e for e in everything if e.key not in doomed), key=lambda e: e.last_used)
            total = sum({e.path: e.size for e in kept}.values())
            for e in kept:
                if total <= max_bytes:
                    break
                doomed[e.key] = e
                if not any(o.path == e.path and o.key not in doomed for o in kept):
                    total -= e.size
        removed = sorted(doomed.values(), key=lambda e: e.last_used)
        freed = sum({e.path: e.size for e in removed}.values())
        if not dry_run:
            self._remove(removed)
        return CleanReport(removed=removed, freed_bytes=freed, dry_run=dry_run)

    def verify(self, fix: bool = True) -> VerifyReport:
        """Re-hash every result file; with ``fix``, drop entries whose file is missing or
        differs from what was recorded. Also checks the index's integrity."""
        index_ok = self._con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        damaged: list[tuple[Entry, str]] = []
        checked = self.entries()
        for entry in checked:
            reason = _damage(entry)
            if reason:
                damaged.append((entry, reason))
        if fix and damaged:
            self._remove([e for e, _ in damaged], also_shared_files=True)
        return VerifyReport(checked=len(checked), damaged=damaged, fixed=fix, index_ok=index_ok)

    def _remove(self, entries: Iterable[Entry], also_shared_files: bool = False) -> None:
        entries = list(entries)
        if not entries:
            return
        with self._transaction() as con:
            con.executemany("DELETE FROM entries WHERE key = ?", [(e.key,) for e in entries])
        for e in entries:
            self._unlink_inside(self._sidecar_path(e.key))
            self._remove_idle_lock(e.key)
        paths = [e.path for e in entries]
        if also_shared_files:
            for p in paths:
                self._unlink_inside(p)
        else:
            self._unlink_unreferenced(paths)

    def _remove_idle_lock(self, key: str) -> None:
        """Remove a key's lock file, but only while holding it: a lock someone holds stays."""
        path = self.lock_path(key)
        if not path.exists():
            return
        lock = FileLock(str(path), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except (LockTimeout, OSError):
            return
        try:
            self._unlink_inside(path)
        finally:
            lock.release()

    def _unlink_unreferenced(self, paths: Iterable[Path]) -> None:
        for p in set(paths):
            still_used = self._con.execute(
                "SELECT 1 FROM entries WHERE result_name = ? LIMIT 1", (p.name,)
            ).fetchone()
            if still_used is None:
                self._unlink_inside(p)

    def _unlink_inside(self, path: Path) -> None:
        """Delete ``path`` only if it lies inside the store root: the store's one unlink."""
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise StoreError(f"Refusing to delete {path}: it is outside the store at {self.root}.")
        resolved.unlink(missing_ok=True)

    # -- the original app's JSON format -------------------------------------------------------

    def export_legacy_json(self, path: str | os.PathLike[str]) -> int:
        """Write ``{image_hash: {"bgRemoved": path, ..., "timestamp": ms}}`` with the newest
        entry per image and operation, absolute paths. Returns how many results it lists."""
        legacy: dict[str, dict[str, Any]] = {}
        written = 0
        for entry in reversed(self.entries(sort="age")):  # oldest first: newest wins
            op = OPERATIONS.get(entry.operation)
            if op is None:
                continue
            record = legacy.setdefault(entry.image_hash, {})
            if op.legacy_key not in record:
                written += 1
            record[op.legacy_key] = str(entry.path)
            record["timestamp"] = max(record.get("timestamp", 0), int(entry.created * 1000))
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(legacy, indent=2, sort_keys=True))
        os.replace(tmp, target)
        return written

    def import_legacy_json(
        self, path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
    ) -> ImportReport:
        """Bring a cache from the original app into this store.

        Result files are copied (never moved or deleted). Web paths such as
        ``/uploads/processed_images/x.png`` are looked up under ``root``; relative paths under
        ``root`` or the JSON file's folder. Imported entries get the operation's default fal.ai
        endpoint and parameters. Missing files are skipped and listed."""
        source = Path(path)
        try:
            legacy = json.loads(source.read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(f"{source}: cannot read a legacy cache file ({exc}).") from None
        if not isinstance(legacy, dict):
            raise StoreError(f"{source}: expected a JSON object keyed by image hash.")
        base = Path(root) if root is not None else source.parent
        by_legacy_key = {op.legacy_key: op for op in OPERATIONS.values()}
        report = ImportReport()
        imported = present = 0
        for image_hash, record in legacy.items():
            if not isinstance(record, dict):
                report.invalid.append(str(image_hash))
                continue
            created = float(record.get("timestamp", self.clock() * 1000)) / 1000
            for legacy_key, op in by_legacy_key.items():
                web_path = record.get(legacy_key)
                if not web_path:
                    continue
                file = _legacy_file(str(web_path), base, root is not None)
                if file is None:
                    report.skipped_missing.append(str(web_path))
                    continue
                endpoint = Endpoint(op.fal_endpoint)
                params = op.canonical_params()
                key = cache_key(image_hash, op.name, endpoint, params)
                if self.get(key) is not None:
                    present += 1
                    continue
                data = file.read_bytes()
                try:
                    from PIL import Image

                    with Image.open(file) as img:
                        width, height = img.size
                        content_type = Image.MIME.get(img.format or "", "image/png")
                except OSError:
                    report.invalid.append(str(web_path))
                    continue
                self.put(
                    key,
                    data,
                    image_hash=image_hash,
                    operation=op.name,
                    endpoint=endpoint,
                    params=params,
                    backend="fal",
                    width=width,
                    height=height,
                    content_type=content_type,
                    source=str(file),
                    created=created,
                )
                imported += 1
        return replace(report, imported=imported, already_present=present)


def _legacy_file(web_path: str, base: Path, rooted: bool) -> Path | None:
    candidates = []
    as_path = Path(web_path)
    if as_path.is_absolute() and not rooted:
        candidates.append(as_path)
    candidates.append(base / web_path.lstrip("/"))
    return next((c for c in candidates if c.is_file()), None)


def _bump(con: sqlite3.Connection, name: str, by: float) -> None:
    con.execute(
        "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
        (name, by, by),
    )


def _file_has_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def _damage(entry: Entry) -> str | None:
    try:
        with entry.path.open("rb") as f:
            digest = sha256_stream(f)
    except FileNotFoundError:
        return "result file missing"
    except OSError as exc:
        return f"result file unreadable ({exc.strerror})"
    if digest != entry.result_sha256:
        return "result file content differs from what was stored"
    return None
