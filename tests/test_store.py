"""ResultStore on its own: atomic entries, checks on lookup, clean, verify."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from conftest import CountingBackend
from nbimgprep import NotInCache, Processor, ResultStore, StoreError
from nbimgprep.errors import AmbiguousPrefix
from nbimgprep.images import encode_png
from nbimgprep.operations import Endpoint, cache_key
from nbimgprep.store import ResultMeta
from nbimgprep.store.files import StoreFiles

DAY = 86400.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def tiny_png(shade: int) -> bytes:
    from PIL import Image

    return encode_png(Image.new("RGB", (4, 3), (shade, shade, shade)))


def put(store: ResultStore, n: int, op: str = "upscale") -> str:
    image_hash = f"{n:064x}"
    key = cache_key(image_hash, op, Endpoint(f"local/{op}"), {})
    meta = ResultMeta(
        image_hash=image_hash,
        operation=op,
        endpoint=Endpoint(f"local/{op}"),
        params={},
        backend="local",
        width=4,
        height=3,
        content_type="image/png",
        backend_seconds=2.0,
    )
    store.put(key, tiny_png(n % 256), meta)
    return key


def test_put_then_lookup_counts_hits_and_misses(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    key = put(store, 1)
    assert store.lookup("0" * 64) is None
    entry = store.lookup(key)
    assert entry is not None and entry.hits == 1 and entry.path.read_bytes() == tiny_png(1)
    stats = store.stats()
    assert (stats.entries, stats.hits, stats.misses) == (1, 1, 1)
    assert stats.seconds_saved == 2.0 and stats.hit_rate == 0.5


def test_a_replacing_put_that_fails_half_way_leaves_the_old_entry(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "cache")
    key = put(store, 1)
    old = store.lookup(key)
    assert old is not None
    # The new result's content-addressed name is taken by a folder: its rename must fail.
    new_bytes = tiny_png(200)
    digest = hashlib.sha256(new_bytes).hexdigest()
    (store.root / "results" / digest[:2] / f"{digest}.png").mkdir(parents=True)
    meta = ResultMeta(old.image_hash, "upscale", Endpoint("local/upscale"), {}, "local", 4, 3)
    with pytest.raises(StoreError):
        store.put(key, new_bytes, meta)
    store.rebuild_index()  # the sidecars are the truth: the old entry must still be there
    survivor = store.lookup(key)
    assert survivor is not None
    assert survivor.result_sha256 == old.result_sha256
    assert survivor.path.read_bytes() == old.path.read_bytes()


def test_layout_is_blob_sidecar_and_index(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    key = put(store, 7)
    entry = store.get(key)
    assert entry is not None
    assert entry.path.parent.parent == tmp_path / "results"
    sidecar = json.loads((tmp_path / "entries" / key[:2] / f"{key}.json").read_text())
    assert sidecar["key"] == key and sidecar["result_sha256"] == entry.result_sha256
    assert not list((tmp_path / "tmp").iterdir())  # nothing half-written left behind


def test_result_file_deleted_behind_the_stores_back_is_a_miss(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    key = put(store, 2)
    entry = store.get(key)
    assert entry is not None
    entry.path.unlink()
    assert store.lookup(key) is None
    assert store.get(key) is None  # the entry was dropped


def test_result_file_with_wrong_size_is_not_served(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    key = put(store, 3)
    entry = store.get(key)
    assert entry is not None
    entry.path.write_bytes(b"truncated")
    assert store.lookup(key) is None


def test_lost_index_is_rebuilt_from_sidecars(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    keys = [put(store, n) for n in range(5)]
    del store
    for f in tmp_path.glob("index.sqlite*"):
        f.unlink()
    reopened = ResultStore(tmp_path)
    assert len(reopened) == 5
    assert all(reopened.lookup(k) is not None for k in keys)


def test_damaged_index_is_set_aside_and_rebuilt(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    key = put(store, 4)
    del store
    for f in tmp_path.glob("index.sqlite-*"):
        f.unlink()
    (tmp_path / "index.sqlite").write_bytes(b"this is not a database" * 100)
    reopened = ResultStore(tmp_path)
    assert reopened.lookup(key) is not None
    assert list(tmp_path.glob("index.sqlite.damaged-*"))


def test_entry_whose_index_row_was_never_written_is_adopted(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    key = put(store, 5)
    with sqlite3.connect(tmp_path / "index.sqlite") as con:  # a crash between sidecar and row
        con.execute("DELETE FROM entries")
    assert store.lookup(key) is not None


def test_clean_by_age_uses_last_use(tmp_path: Path) -> None:
    clock = Clock()
    store = ResultStore(tmp_path, clock=clock)
    old, used, new = put(store, 1), put(store, 2), put(store, 3)
    clock.now += 20 * DAY
    store.lookup(used)
    clock.now += 15 * DAY
    meta = ResultMeta(f"{3:064x}", "upscale", Endpoint("local/upscale"), {}, "local", 4, 3)
    store.put(new, tiny_png(3), meta)
    report = store.clean(max_age_days=30)
    assert [e.key for e in report.removed] == [old]
    assert store.get(old) is None and store.get(used) is not None
    assert not report.removed[0].path.exists()


def test_clean_dry_run_removes_nothing_and_zero_days_removes_all(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    for n in range(4):
        put(store, n)
    assert len(store.clean(max_age_days=0, dry_run=True).removed) == 4
    assert len(store) == 4
    assert len(store.clean(max_age_days=0).removed) == 4
    assert len(store) == 0 and not list((tmp_path / "results").glob("*/*"))
    assert not list((tmp_path / "entries").glob("*/*"))


def test_clean_by_size_evicts_least_recently_used_first(tmp_path: Path) -> None:
    clock = Clock()
    store = ResultStore(tmp_path, clock=clock)
    keys = []
    for n in range(4):
        keys.append(put(store, n))
        clock.now += 10
    store.lookup(keys[0])  # the oldest is now the most recently used
    keep = store.get(keys[0]).size + store.get(keys[3]).size  # type: ignore[union-attr]
    report = store.clean(max_age_days=None, max_bytes=keep)
    assert sorted(e.key for e in report.removed) == sorted(keys[1:3])


def test_clean_missing_drops_only_broken_entries(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    good, bad = put(store, 1), put(store, 2)
    store.get(bad).path.unlink()  # type: ignore[union-attr]
    report = store.clean(max_age_days=None, missing=True)
    assert [e.key for e in report.removed] == [bad] and store.get(good) is not None


def test_verify_rehashes_and_drops_corrupt_results(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    good, bad = put(store, 1), put(store, 2)
    path = store.get(bad).path  # type: ignore[union-attr]
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # same size, different bytes: only a re-hash sees it
    path.write_bytes(bytes(data))
    report = store.verify()
    assert report.checked == 2 and [e.key for e, _ in report.damaged] == [bad]
    assert report.index_ok and store.get(bad) is None and store.get(good) is not None


def test_find_by_key_prefix_image_prefix_and_path(tmp_path: Path, testdata: Path) -> None:
    store = ResultStore(tmp_path / "cache")
    proc = Processor(CountingBackend(), store=store)
    r = proc.run_sync("upscale", testdata / "chelsea.png")
    proc.run_sync("remove_background", testdata / "chelsea.png")
    assert [e.key for e in store.find(r.key[:10])] == [r.key]
    assert len(store.find(r.image_hash[:10])) == 2
    assert len(store.find(str(testdata / "chelsea.png"))) == 2
    with pytest.raises(NotInCache):
        store.find(str(testdata / "rocket.jpg"))
    with pytest.raises(NotInCache):
        store.find("zzz-not-hex")


def test_a_prefix_shared_by_several_keys_is_ambiguous(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    keys = [put(store, n) for n in range(40)]
    first_chars = [k[0] for k in keys]
    shared = next(c for c in first_chars if first_chars.count(c) > 1)
    with pytest.raises(AmbiguousPrefix, match="type more characters"):
        store.find(shared)


def test_nothing_outside_the_root_is_ever_deleted(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "cache")
    outside = tmp_path / "precious.png"
    outside.write_bytes(b"keep me")
    with pytest.raises(StoreError, match="outside the store"):
        StoreFiles(store.root).unlink(outside)
    assert outside.exists()

    # Old files named like orphan results, but reached through a symlink (a result file that
    # is a link out, a results folder that is a link out): clean and verify leave them be.
    month_ago = time.time() - 30 * DAY
    name = hashlib.sha256(b"keep me").hexdigest() + ".png"
    link = store.root / "results" / name[:2] / name
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(outside)
    elsewhere = tmp_path / "elsewhere"
    far = elsewhere / name[:2] / name
    far.parent.mkdir(parents=True)
    far.write_bytes(b"keep me too")
    linked = ResultStore(tmp_path / "linked")
    (linked.root / "results").rmdir()
    (linked.root / "results").symlink_to(elsewhere)
    for path in (outside, link, far):
        os.utime(path, (month_ago, month_ago), follow_symlinks=False)
    for each in (store, linked):
        assert each.verify().orphans == 0
        assert each.clean(max_age_days=0).orphans == 0
    assert outside.read_bytes() == b"keep me" and link.is_symlink()
    assert far.read_bytes() == b"keep me too"


def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="NBIMGPREP_CACHE_DIR"):
        ResultStore(blocker / "cache")


def test_index_passes_integrity_check(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    for n in range(10):
        put(store, n)
    con = sqlite3.connect(tmp_path / "index.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_removing_an_entry_removes_its_idle_lock_file_but_never_a_held_one(
    tmp_path: Path,
) -> None:
    from filelock import FileLock

    store = ResultStore(tmp_path)
    idle, held = put(store, 1), put(store, 2)
    store.lock_path(idle).touch()
    holder = FileLock(str(store.lock_path(held)), thread_local=False)
    holder.acquire()
    try:
        store.delete(idle)
        store.delete(held)
        assert not store.lock_path(idle).exists()
        assert store.lock_path(held).exists()
    finally:
        holder.release()


def test_the_index_columns_and_the_sidecar_are_the_entry_fields(tmp_path: Path) -> None:
    from dataclasses import fields

    from nbimgprep.store import Entry

    store = ResultStore(tmp_path)
    key = put(store, 8)
    con = sqlite3.connect(tmp_path / "index.sqlite")
    live = [row[1] for row in con.execute("PRAGMA table_info(entries)")]
    names = [f.name for f in fields(Entry)]
    # Every field is a column (the result file is kept by its name), and nothing else is.
    assert live == ["result_name" if n == "path" else n for n in names]
    sidecar = json.loads((tmp_path / "entries" / key[:2] / f"{key}.json").read_text())
    assert set(sidecar) == set(names) - {"hits", "last_hit"} | {"schema"}
    # A row read back is the entry that was written.
    assert store.get(key) == store.entries()[0]
    assert store.get(key).sidecar() == {**sidecar}  # type: ignore[union-attr]
