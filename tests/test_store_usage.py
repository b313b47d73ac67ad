"""Hit counts without a write per hit: counted in memory, written at most once a second, at
close and at exit, and always before stats, listings and clean read them."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from nbimgprep import ResultStore
from test_store import DAY, Clock, put

TESTS = Path(__file__).resolve().parent


def commits_seen(root: Path) -> sqlite3.Connection:
    """A second connection: its ``PRAGMA data_version`` moves when another one commits."""
    return sqlite3.connect(root / "index.sqlite")


def data_version(con: sqlite3.Connection) -> int:
    return int(con.execute("PRAGMA data_version").fetchone()[0])


def test_hits_are_not_a_write_each_but_stats_see_them_all(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, flush_interval=3600)
    key = put(store, 1)
    watcher = commits_seen(tmp_path)
    before = data_version(watcher)
    for _ in range(100):
        assert store.lookup(key) is not None
    assert store.lookup("0" * 64) is None
    assert data_version(watcher) == before  # a hundred hits, not one commit
    stats = store.stats()
    assert (stats.hits, stats.misses) == (100, 1)
    assert store.entries()[0].hits == 100
    assert data_version(watcher) != before


def test_the_hit_count_a_lookup_returns_includes_the_uncounted_ones(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, flush_interval=3600)
    key = put(store, 2)
    counts = [store.lookup(key).hits for _ in range(3)]  # type: ignore[union-attr]
    assert counts == [1, 2, 3]


def test_clean_sees_a_recent_hit_that_is_not_written_yet(tmp_path: Path) -> None:
    clock = Clock()
    store = ResultStore(tmp_path, clock=clock, flush_interval=3600)
    used, unused = put(store, 1), put(store, 2)
    clock.now += 40 * DAY
    store.lookup(used)
    assert [e.key for e in store.clean(max_age_days=30).removed] == [unused]
    assert store.get(used) is not None


def test_close_writes_the_counts(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, flush_interval=3600)
    key = put(store, 3)
    for _ in range(5):
        store.lookup(key)
    store.close()
    assert ResultStore(tmp_path).stats().hits == 5


LOOKER = textwrap.dedent(
    """
    import os, signal, sqlite3, sys, time
    sys.path.insert(0, {tests!r})
    from nbimgprep import ResultStore
    store = ResultStore({root!r}, flush_interval={interval!r})
    for _ in range(7):
        store.lookup({key!r})
    if {wait_for_flush!r}:
        # The background writer must get the counts out without any further call.
        watcher = sqlite3.connect({index!r})
        deadline = time.monotonic() + 60
        while watcher.execute("SELECT hits FROM entries").fetchone()[0] < 7:
            assert time.monotonic() < deadline, "counts never written"
            time.sleep(0.01)
    if {kill!r}:
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _looker(root: Path, key: str, *, interval: float, wait_for_flush: bool, kill: bool) -> int:
    code = LOOKER.format(
        tests=str(TESTS),
        root=str(root),
        index=str(root / "index.sqlite"),
        key=key,
        interval=interval,
        wait_for_flush=wait_for_flush,
        kill=kill,
    )
    return subprocess.run([sys.executable, "-c", code], timeout=120).returncode


def test_counts_are_written_in_the_background_so_a_kill_loses_at_most_the_last_second(
    tmp_path: Path,
) -> None:
    store = ResultStore(tmp_path)
    key = put(store, 4)
    store.close()
    assert _looker(tmp_path, key, interval=0.05, wait_for_flush=True, kill=True) == -9
    reopened = ResultStore(tmp_path)
    assert reopened.stats().hits == 7 and reopened.get(key) is not None


def test_counts_are_written_when_the_process_exits(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    key = put(store, 5)
    store.close()
    assert _looker(tmp_path, key, interval=3600, wait_for_flush=False, kill=False) == 0
    assert ResultStore(tmp_path).stats().hits == 7
