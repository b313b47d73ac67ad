"""What ``ResultStore.stats`` returns, and the queries that make it."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

__all__ = ["OperationStats", "StoreStats", "read_stats"]


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


def read_stats(con: sqlite3.Connection) -> StoreStats:
    """Entries, bytes on disk (each result file once), hits, misses and seconds saved."""
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
        entries=int(con.execute("SELECT COUNT(*) FROM entries").fetchone()[0]),
        bytes=int(total_bytes or 0),
        hits=int(counters.get("hits", 0)),
        misses=int(counters.get("misses", 0)),
        seconds_saved=float(sum(s.seconds_saved for s in by_op.values())),
        by_operation=by_op,
    )
