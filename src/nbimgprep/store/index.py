"""The SQLite index: entry rows, usage counters and the file-hash memo.

The index is an accelerator over the sidecars (which are the truth): it answers lookups,
listings and stats without touching the sidecars, and is rebuilt from them when it is lost
or damaged. The ``entries`` table is derived from :class:`~nbimgprep.store.entry.Entry`.
One connection per thread, reopened after a fork (as diskcache does); writes go through
``BEGIN IMMEDIATE`` transactions and wait for other writers up to ``timeout`` seconds, then
fail with a :class:`~nbimgprep.errors.StoreError` (never a raw ``sqlite3`` error). A read-only
store opens its index read-only, or, when that index is missing or damaged, builds one in
memory from the sidecars.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

from ..errors import StoreError
from .entry import COLUMNS, Entry, from_row, table_ddl, to_row
from .files import ResultStamp
from .stats import StoreStats, read_stats

__all__ = ["Index", "SortKey"]

SortKey = Literal["age", "hits", "size"]

#: The condition "this entry carries the tag ?" (tags are a JSON list in the row).
HAS_TAG = "EXISTS (SELECT 1 FROM json_each(entries.tags) WHERE value = ?)"
_ORDER: dict[str, str] = {
    "age": "created DESC",
    "hits": "hits DESC, created DESC",
    "size": "size DESC",
}

_SCHEMA = f"""
{table_ddl("entries")};
CREATE INDEX IF NOT EXISTS entries_image ON entries (image_hash);
CREATE INDEX IF NOT EXISTS entries_created ON entries (created);
CREATE INDEX IF NOT EXISTS entries_result ON entries (result_name);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS hash_memo (
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, inode INTEGER, ctime_ns INTEGER,
    device INTEGER, sha256 TEXT, hashed_ns INTEGER
);
CREATE TABLE IF NOT EXISTS result_stamps (
    result_name TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER,
    inode INTEGER
);
"""


P = ParamSpec("P")
R = TypeVar("R")

_memory_ids = itertools.count()


def _translated(method: Callable[P, R]) -> Callable[P, R]:
    """Turn ``sqlite3`` errors into a :class:`StoreError` that says what to do."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            index = args[0]
            assert isinstance(index, Index)
            raise index.store_error(exc) from exc

    return wrapper


_INSERT_STAMP = "INSERT OR REPLACE INTO result_stamps VALUES (?, ?, ?, ?, ?)"
_SELECT_WITH_STAMP = (
    "SELECT entries.*, s.size AS stamp_size, s.mtime_ns AS stamp_mtime, "
    "s.ctime_ns AS stamp_ctime, s.inode AS stamp_inode FROM entries "
    "LEFT JOIN result_stamps AS s ON s.result_name = entries.result_name WHERE key = ?"
)
_INSERT = (
    f"INSERT OR REPLACE INTO entries ({', '.join(c.name for c in COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)


class Index:
    """The SQLite file at ``path``; ``result_path`` turns a stored file name into a path."""

    def __init__(
        self,
        path: Path,
        result_path: Callable[[str], Path],
        *,
        read_only: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self.path = path
        self.read_only = read_only
        self.timeout = timeout
        self.in_memory = False
        # A read-only store with no write-ahead log left over can be read as immutable (no
        # locking, so no -shm file to create); with one, SQLite needs mode=ro.
        wal = path.with_name(path.name + "-wal").exists()
        ro = "mode=ro" if wal else "immutable=1"
        self._uri = f"{path.absolute().as_uri()}?{ro}" if read_only else str(path)
        self._result_path = result_path
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._opened_lock = threading.Lock()
        self._anchor: sqlite3.Connection | None = None

    def store_error(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return StoreError(
                f"The cache index {self.path} is locked by another process (waited "
                f"{self.timeout:g} s). Close the other kernel or process using this cache, "
                "or try again."
            )
        if "readonly" in text or "read-only" in text:
            return StoreError(f"The cache at {self.path.parent} is read-only: {text}.")
        return StoreError(
            f"The cache index {self.path} cannot be used ({text}). It is rebuilt from the "
            "sidecars when the store is opened again; `nbimgprep cache verify` checks it."
        )

    # -- connections ---------------------------------------------------------------------------

    @property
    def con(self) -> sqlite3.Connection:
        """This thread's connection (a new one after a fork)."""
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None or getattr(self._local, "pid", None) != os.getpid():
            con = self._connect()
            self._local.con = con
            self._local.pid = os.getpid()
            with self._opened_lock:
                self._opened.append(con)
        return con

    def _connect(self) -> sqlite3.Connection:
        uri = self.in_memory or self.read_only
        con = sqlite3.connect(
            self._uri, timeout=self.timeout, isolation_level=None, check_same_thread=False, uri=uri
        )
        con.row_factory = sqlite3.Row
        if self.read_only and not self.in_memory:
            con.execute("SELECT key FROM entries LIMIT 1").fetchall()  # a usable index?
            return con
        if not self.in_memory:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
        con.executescript(_SCHEMA)
        _migrate(con)
        return con

    def use_memory(self) -> None:
        """Serve from an index in memory (a read-only store whose index cannot be read)."""
        self.close()
        self.in_memory = True
        self._uri = (
            f"file:nbimgprep-index-{os.getpid()}-{next(_memory_ids)}?mode=memory&cache=shared"
        )
        self._anchor = self._connect()  # the memory database lives while one connection does

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this index opened in this process."""
        with self._opened_lock:
            opened, self._opened = self._opened, []
        if self._anchor is not None:
            opened.append(self._anchor)
            self._anchor = None
        for con in opened:
            with contextlib.suppress(sqlite3.Error):
                con.close()
        self._local = threading.local()

    def forget(self) -> None:
        """Drop this thread's connection without closing it (its file was set aside)."""
        self._local.con = None

    def check(self) -> None:
        """Raise ``sqlite3.DatabaseError`` (untranslated) unless the index is intact."""
        result = self.con.execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            raise sqlite3.DatabaseError(f"quick_check: {result}")

    # -- rows ----------------------------------------------------------------------------------

    @_translated
    def insert(
        self,
        entries: Iterable[Entry],
        stamps: Iterable[ResultStamp | None] = (),
        con: sqlite3.Connection | None = None,
    ) -> None:
        """Insert (or replace) rows; with ``stamps`` (one per entry), their files' stamps."""
        entries = list(entries)
        rows = [to_row(e) for e in entries]
        recorded = [
            (e.path.name, *astuple(s))
            for e, s in zip(entries, stamps, strict=False)
            if s is not None
        ]
        with contextlib.nullcontext(con) if con is not None else self.transaction() as tx:
            tx.executemany(_INSERT, rows)
            tx.executemany(_INSERT_STAMP, recorded)

    @_translated
    def get(self, key: str) -> Entry | None:
        row = self.con.execute("SELECT * FROM entries WHERE key = ?", (key,)).fetchone()
        return from_row(row, self._result_path) if row is not None else None

    @_translated
    def get_with_stamp(self, key: str) -> tuple[Entry, ResultStamp | None] | None:
        """The entry for ``key`` and the stamp its file had when it was last checked."""
        row = self.con.execute(_SELECT_WITH_STAMP, (key,)).fetchone()
        if row is None:
            return None
        stamp = None
        if row["stamp_size"] is not None:
            stamp = ResultStamp(
                row["stamp_size"], row["stamp_mtime"], row["stamp_ctime"], row["stamp_inode"]
            )
        return from_row(row, self._result_path), stamp

    @_translated
    def record_stamp(self, result_name: str, stamp: ResultStamp) -> None:
        if self.read_only and not self.in_memory:
            return
        with self.transaction() as con:
            con.execute(_INSERT_STAMP, (result_name, *astuple(stamp)))

    @_translated
    def select(
        self,
        where: str = "",
        args: Sequence[Any] = (),
        sort: SortKey = "age",
        limit: int | None = None,
    ) -> list[Entry]:
        order = _ORDER.get(sort)
        if order is None:
            raise ValueError(f"sort must be one of age, hits, size, not {sort!r}")
        sql = "SELECT * FROM entries" + (f" WHERE {where}" if where else "")
        sql += f" ORDER BY {order}"
        params = list(args)
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [from_row(r, self._result_path) for r in self.con.execute(sql, params)]

    @_translated
    def keys_tagged(self, tag: str) -> set[str]:
        """The keys of the entries carrying ``tag``, without building an entry for each."""
        sql = f"SELECT key FROM entries WHERE {HAS_TAG}"
        return {row[0] for row in self.con.execute(sql, (tag,))}

    @_translated
    def set_tags(self, key: str, tags: tuple[str, ...]) -> None:
        with self.transaction() as con:
            con.execute("UPDATE entries SET tags = ? WHERE key = ?", (json.dumps(tags), key))

    @_translated
    def count(self) -> int:
        return int(self.con.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    @_translated
    def delete(self, keys: Iterable[str]) -> None:
        with self.transaction() as con:
            con.executemany("DELETE FROM entries WHERE key = ?", [(k,) for k in keys])

    @_translated
    def clear(self) -> None:
        with self.transaction() as con:
            con.execute("DELETE FROM entries")

    @_translated
    def result_names(self) -> set[str]:
        """The names of the result files the entries use."""
        return {row[0] for row in self.con.execute("SELECT DISTINCT result_name FROM entries")}

    @_translated
    def unlink_unreferenced(self, paths: Iterable[Path], unlink: Callable[[Path], None]) -> None:
        """Unlink the result files no entry uses any more. Done while holding the write lock,
        so a ``put`` of the same bytes either sees its file gone and writes it again, or
        commits its row first and the file is kept."""
        with self.transaction() as con:
            for p in set(paths):
                used = con.execute(
                    "SELECT 1 FROM entries WHERE result_name = ? LIMIT 1", (p.name,)
                ).fetchone()
                if used is None:
                    con.execute("DELETE FROM result_stamps WHERE result_name = ?", (p.name,))
                    with contextlib.suppress(OSError):
                        unlink(p)

    @_translated
    def integrity_ok(self) -> bool:
        return bool(self.con.execute("PRAGMA integrity_check").fetchone()[0] == "ok")

    # -- counters ------------------------------------------------------------------------------

    @_translated
    def add_usage(self, hits: dict[str, tuple[int, float]], misses: int) -> None:
        """Add counted lookups: per key (hits, last hit time), and misses."""
        if self.read_only:
            return
        with self.transaction() as con:
            con.executemany(
                "UPDATE entries SET hits = hits + ?, last_hit = MAX(COALESCE(last_hit, 0), ?) "
                "WHERE key = ?",
                [(count, last, key) for key, (count, last) in hits.items()],
            )
            _bump(con, "hits", sum(count for count, _ in hits.values()))
            _bump(con, "misses", misses)

    @_translated
    def stats(self) -> StoreStats:
        """Entries, bytes on disk (each result file once), hits, misses and seconds saved."""
        return read_stats(self.con)


def _migrate(con: sqlite3.Connection) -> None:
    """Bring an index made by an earlier version up to this one's tables: missing entry
    columns are added (counters kept); a hash memo of another shape is started afresh."""
    live = {row[1] for row in con.execute("PRAGMA table_info(entries)")}
    for column in COLUMNS:
        if column.name not in live:
            con.execute(f"ALTER TABLE entries ADD COLUMN {column.ddl(primary_key=False)}")
    memo = {row[1] for row in con.execute("PRAGMA table_info(hash_memo)")}
    if "hashed_ns" not in memo:
        con.execute("DROP TABLE hash_memo")
        con.executescript(_SCHEMA)


def _bump(con: sqlite3.Connection, name: str, by: float) -> None:
    con.execute(
        "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
        (name, by, by),
    )
