"""The file-hash memo: an input file's SHA-256 remembered by its stamp, so an unchanged file
costs one ``stat()`` the next time. An accelerator: any doubt, and the file is hashed again."""

from __future__ import annotations

import contextlib
import sqlite3
import time

from ..hashing import FileStamp
from .index import Index

__all__ = ["FileHashMemo", "memo_settle_ns"]


def memo_settle_ns(stamp: FileStamp) -> int:
    """How long a file must have been unchanged when it was hashed for the memo to trust it.

    File times tick in steps (a few milliseconds on Linux, up to two seconds on FAT), so a file
    rewritten within the same step as it was hashed could look unchanged (git's "racily clean"
    files). Times with sub-second parts come from a fine clock: 50 ms is past its step.
    """
    fine = stamp.mtime_ns % 1_000_000_000 or stamp.ctime_ns % 1_000_000_000
    return 50_000_000 if fine else 2_000_000_000


class FileHashMemo:
    """:class:`~nbimgprep.hashing.HashMemo` on the index's ``hash_memo`` table."""

    def __init__(self, index: Index) -> None:
        self._index = index

    def get_hash(self, stamp: FileStamp) -> str | None:
        """The remembered hash of a file with exactly this stamp, if it can be trusted."""
        try:
            row = self._index.con.execute(
                "SELECT sha256, hashed_ns FROM hash_memo WHERE path = ? AND size = ? "
                "AND mtime_ns = ? AND inode = ? AND ctime_ns = ? AND device = ?",
                (stamp.path, stamp.size, stamp.mtime_ns, stamp.inode, stamp.ctime_ns, stamp.device),
            ).fetchone()
        except sqlite3.Error:  # the memo is an accelerator: without it, files are hashed
            return None
        if row is None:
            return None
        changed = max(stamp.mtime_ns, stamp.ctime_ns)
        if row["hashed_ns"] is None or row["hashed_ns"] - changed < memo_settle_ns(stamp):
            return None  # hashed too soon after a change to be sure: hash again
        return str(row["sha256"])

    def put_hash(self, stamp: FileStamp, sha256: str) -> None:
        # The memo is an accelerator: a read-only store still hashes correctly without it.
        if self._index.read_only and not self._index.in_memory:
            return
        with contextlib.suppress(sqlite3.Error):
            self._index.con.execute(
                "INSERT OR REPLACE INTO hash_memo VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    stamp.path,
                    stamp.size,
                    stamp.mtime_ns,
                    stamp.inode,
                    stamp.ctime_ns,
                    stamp.device,
                    sha256,
                    time.time_ns(),
                ),
            )
