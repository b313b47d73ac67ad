"""Orphan result files: a file under results/ that no entry points to (left by a put that died
between writing its bytes and its sidecar) is removed by ``clean`` once it is an hour old, and
counted by ``verify``; a put in progress, a sidecar whose index row is missing, and anything not
named like a result are never touched."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from pathlib import Path

import pytest

from nbimgprep import ResultStore, StoreError, commands
from nbimgprep.operations import Endpoint, cache_key
from nbimgprep.store import ResultMeta
from test_store import put, tiny_png

HOUR = 3600.0


def age(path: Path, seconds: float) -> None:
    """Make ``path`` look as if it was last written ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


def orphan(store: ResultStore, n: int) -> Path:
    """A put that fails after writing its result bytes (its sidecar cannot be written, as on
    a full disk): the bytes stay, and no entry points to them. Returns their path."""
    image_hash = f"{n:064x}"
    key = cache_key(image_hash, "upscale", Endpoint("local/upscale"), {})
    blocker = store.root / "entries" / key[:2] / f"{key}.json"
    blocker.mkdir(parents=True)  # the sidecar's name is taken by a folder
    meta = ResultMeta(image_hash, "upscale", Endpoint("local/upscale"), {}, "local", 4, 3)
    with pytest.raises(StoreError):
        store.put(key, tiny_png(n), meta)
    blocker.rmdir()
    assert store.get(key) is None
    digest = hashlib.sha256(tiny_png(n)).hexdigest()
    path = store.root / "results" / digest[:2] / f"{digest}.png"
    assert path.exists()
    return path


def test_clean_removes_orphans_past_the_grace_and_says_how_many_and_how_big(
    tmp_path: Path,
) -> None:
    store = ResultStore(tmp_path)
    kept = [put(store, n) for n in (1, 2)]
    old, young = orphan(store, 3), orphan(store, 4)
    age(old, 2 * HOUR)
    age(young, 5 * 60)  # as young as a put in progress may be
    size = old.stat().st_size

    summary = commands.clean(store)

    assert (summary.orphans, summary.orphan_bytes) == (1, size)
    assert not old.exists() and young.exists()
    assert summary.removed == []  # no entry was old enough
    assert "1 orphan result files no entry pointed to" in str(summary)
    assert "Nothing to clean" not in str(summary)
    for key in kept:  # the entries are untouched, and still served
        entry = store.lookup(key)
        assert entry is not None and entry.path.exists()
    again = commands.clean(store)
    assert again.orphans == 0 and str(again).startswith("Nothing to clean")


def test_a_dry_run_and_verify_count_orphans_and_remove_nothing(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    put(store, 1)
    paths = [orphan(store, n) for n in (2, 3)]
    for path in paths:
        age(path, 2 * HOUR)
    total = sum(p.stat().st_size for p in paths)

    dry = store.clean(dry_run=True)
    assert (dry.orphans, dry.orphan_bytes) == (2, total)
    report = commands.verify(store)
    assert (report.report.orphans, report.report.orphan_bytes) == (2, total)
    assert "2 orphan result files" in str(report) and "`clean` removes them" in str(report)
    assert report.exit_code == 0  # wasted space, not damage
    assert all(p.exists() for p in paths)

    assert store.clean().orphans == 2
    assert not any(p.exists() for p in paths)
    assert commands.verify(store).report.orphans == 0


def test_a_sidecar_whose_index_row_is_missing_keeps_its_result_file(tmp_path: Path) -> None:
    # A crash between the sidecar and the index row: the sidecar (the truth) owns the file.
    store = ResultStore(tmp_path)
    key = put(store, 1)
    entry = store.get(key)
    assert entry is not None
    with sqlite3.connect(store.index_path) as con:
        con.execute("DELETE FROM entries WHERE key = ?", (key,))
    con.close()
    age(entry.path, 2 * HOUR)

    assert store.clean().orphans == 0
    assert entry.path.exists()
    served = store.lookup(key)  # adopted from its sidecar
    assert served is not None and served.path.read_bytes() == tiny_png(1)


def test_only_files_named_like_results_in_their_place_are_ever_swept(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    key = put(store, 1)
    sidecar = store.root / "entries" / key[:2] / f"{key}.json"
    name = hashlib.sha256(b"not stored").hexdigest() + ".png"
    folder = store.root / "results" / name[:2]
    folder.mkdir(exist_ok=True)
    strays = [
        folder / "notes.png",  # not a SHA-256
        folder / (name[:-4] + ".tiff"),  # not a result's suffix
        store.root / "results" / name,  # not in its folder
        store.root / "results" / "ff" / name,  # in another's folder
        store.root / "entries" / name[:2] / name,  # not under results/
    ]
    for stray in strays:
        stray.parent.mkdir(exist_ok=True)
        stray.write_bytes(b"someone's file")
        age(stray, 30 * 24 * HOUR)
    link = folder / name  # named like a result, but a link to an entry's sidecar
    link.symlink_to(sidecar)
    age(link, 30 * 24 * HOUR)

    assert store.clean().orphans == 0
    assert all(stray.exists() for stray in strays)
    assert link.is_symlink() and sidecar.exists()
    assert store.lookup(key) is not None
