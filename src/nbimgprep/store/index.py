"""The SQLite index: entry rows, usage counters and the file-hash memo.

The index is an accelerator over the sidecars (which are the truth): it answers lookups,
listings and stats without touching the sidecars, and is rebuilt from them when it is lost
or damaged. The ``entries`` table is derived from :class:`~nbimgprep.store.entry.Entry`.
One connection per thread, reopened after a fork (as diskcache does); writes go through
``BEGIN IMMEDIATE`` transactions.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..images import FileStamp
from .entry import COLUMNS, Entry, from_row, table_ddl, to_row

__all__ = ["Index", "OperationStats", "SortKey", "StoreStats"]

SortKey = Literal["age", "hits", "size"]

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
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, inode INTEGER, sha256 TEXT
);
"""

_INSERT = (
    f"INSERT OR REPLACE INTO entries ({', '.join(c.name for c in COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)


@dataclass(frozen=True)
class OperationStats:
    """The figures of one operation's entries."""

    entries: int = 0
    hits: int = 0
    seconds_saved: float = 0.0
    bytes: int = 0


@dataclass(frozen=True)
class StoreStats:
    """Totals over the store; ``by_operation`` has the same figures per operation."""

    entries: int
    bytes: int
    hits: int
    misses: int
    seconds_saved: float
    by_operation: dict[str, OperationStats] = field(default_factory=dict)

    @property
    def hit_rate(self) -> float:
        looked_up = self.hits + self.misses
        return self.hits / looked_up if looked_up else 0.0


class Index:
    """The SQLite file at ``path``; ``result_path`` turns a stored file name into a path."""

    def __init__(self, path: Path, result_path: Callable[[str], Path]) -> None:
        self.path = path
        self._result_path = result_path
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._opened_lock = threading.Lock()

    # -- connections ---------------------------------------------------------------------------

    @property
    def con(self) -> sqlite3.Connection:
        """This thread's connection (a new one after a fork)."""
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None or getattr(self._local, "pid", None) != os.getpid():
            con = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.executescript(_SCHEMA)
            self._local.con = con
            self._local.pid = os.getpid()
            with self._opened_lock:
                self._opened.append(con)
        return con

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
        for con in opened:
            with contextlib.suppress(sqlite3.Error):
                con.close()
        self._local = threading.local()

    def forget(self) -> None:
        """Drop this thread's connection without closing it (its file was set aside)."""
        self._local.con = None

    # -- rows ----------------------------------------------------------------------------------

    def insert(self, entries: Iterable[Entry], con: sqlite3.Connection | None = None) -> None:
        rows = [to_row(e) for e in entries]
        if con is not None:
            con.executemany(_INSERT, rows)
            return
        with self.transaction() as tx:
            tx.executemany(_INSERT, rows)

    def get(self, key: str) -> Entry | None:
        row = self.con.execute("SELECT * FROM entries WHERE key = ?", (key,)).fetchone()
        return from_row(row, self._result_path) if row is not None else None

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

    def count(self) -> int:
        return int(self.con.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def delete(self, keys: Iterable[str]) -> None:
        with self.transaction() as con:
            con.executemany("DELETE FROM entries WHERE key = ?", [(k,) for k in keys])

    def clear(self) -> None:
        with self.transaction() as con:
            con.execute("DELETE FROM entries")

    def references(self, result_name: str) -> bool:
        """Whether any entry still uses the result file ``result_name``."""
        row = self.con.execute(
            "SELECT 1 FROM entries WHERE result_name = ? LIMIT 1", (result_name,)
        ).fetchone()
        return row is not None

    def integrity_ok(self) -> bool:
        return bool(self.con.execute("PRAGMA integrity_check").fetchone()[0] == "ok")

    # -- counters ------------------------------------------------------------------------------

    def record_hit(self, key: str, now: float) -> None:
        with self.transaction() as con:
            con.execute(
                "UPDATE entries SET hits = hits + 1, last_hit = ? WHERE key = ?", (now, key)
            )
            _bump(con, "hits", 1)

    def record_miss(self) -> None:
        with self.transaction() as con:
            _bump(con, "misses", 1)

    def stats(self) -> StoreStats:
        """Entries, bytes on disk (each result file once), hits, misses and seconds saved."""
        con = self.con
        counters = {r["name"]: r["value"] for r in con.execute("SELECT * FROM counters")}
        by_op: dict[str, OperationStats] = {}
        for row in con.execute(
            "SELECT operation, COUNT(*) AS n, SUM(hits) AS hits, "
            "SUM(hits * backend_seconds) AS saved FROM entries GROUP BY operation"
        ):
            by_op[row["operation"]] = OperationStats(
                entries=row["n"], hits=row["hits"] or 0, seconds_saved=row["saved"] or 0.0
            )
        op_bytes = con.execute(
            "SELECT operation, SUM(size) FROM (SELECT operation, MAX(size) AS size "
            "FROM entries GROUP BY operation, result_name) GROUP BY operation"
        )
        for operation, size in op_bytes:
            by_op[operation] = OperationStats(**{**vars(by_op[operation]), "bytes": size or 0})
        (total_bytes,) = con.execute(
            "SELECT SUM(size) FROM (SELECT MAX(size) AS size FROM entries GROUP BY result_name)"
        ).fetchone()
        return StoreStats(
            entries=self.count(),
            bytes=int(total_bytes or 0),
            hits=int(counters.get("hits", 0)),
            misses=int(counters.get("misses", 0)),
            seconds_saved=float(sum(s.seconds_saved for s in by_op.values())),
            by_operation=by_op,
        )

    # -- the hash memo (ImageRef's HashMemo) -----------------------------------------------------

    def get_hash(self, stamp: FileStamp) -> str | None:
        row = self.con.execute(
            "SELECT sha256 FROM hash_memo WHERE path = ? AND size = ? AND mtime_ns = ? "
            "AND inode = ?",
            (stamp.path, stamp.size, stamp.mtime_ns, stamp.inode),
        ).fetchone()
        return None if row is None else str(row[0])

    def put_hash(self, stamp: FileStamp, sha256: str) -> None:
        # The memo is an accelerator: a read-only store still hashes correctly without it.
        with contextlib.suppress(sqlite3.Error):
            self.con.execute(
                "INSERT OR REPLACE INTO hash_memo VALUES (?, ?, ?, ?, ?)",
                (stamp.path, stamp.size, stamp.mtime_ns, stamp.inode, sha256),
            )


def _bump(con: sqlite3.Connection, name: str, by: float) -> None:
    con.execute(
        "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
        (name, by, by),
    )
