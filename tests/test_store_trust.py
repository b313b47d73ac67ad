"""What the store promises when files change behind its back, its index is damaged, or its
location is wrong: a hit is always the file that was stored, and every problem is a clear
StoreError or one warning, never a raw sqlite3 traceback."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import CountingBackend
from nbimgprep import ImageRef, Processor, ResultStore, StoreError
from nbimgprep.store import memo as memo_module
from test_store import put, tiny_png


def change_in_place(path: Path, data: bytes | None = None) -> None:
    """Overwrite a file's bytes in place, same size, same inode, mtime put back (as
    ``rsync -t``, ``cp -p`` and some editors leave a file)."""
    before = path.stat()
    if data is None:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
    assert len(data) == before.st_size
    with path.open("r+b") as f:
        f.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )


# -- a hit is the file that was stored -----------------------------------------------------------


def test_a_result_damaged_in_place_is_never_served_and_is_made_again(
    tmp_path: Path, testdata: Path
) -> None:
    backend = CountingBackend()
    proc = Processor(backend, cache_dir=tmp_path / "cache")
    first = proc.run_sync("upscale", testdata / "chelsea.png")
    change_in_place(first.path)
    again = proc.run_sync("upscale", testdata / "chelsea.png")
    assert not again.cache_hit and backend.calls == 2
    again.image.load()  # the bytes handed over decode: they are the bytes that were stored
    assert proc.run_sync("upscale", testdata / "chelsea.png").cache_hit


def test_a_changed_result_file_is_dropped_by_lookup(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    key = put(store, 1)
    entry = store.get(key)
    assert entry is not None
    change_in_place(entry.path)
    assert store.lookup(key) is None
    assert store.get(key) is None and not entry.path.exists()


def test_a_hit_on_an_unchanged_file_is_a_stat_not_a_rehash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbimgprep.store import files

    store = ResultStore(tmp_path)
    key = put(store, 2)

    def rehash(*_: object) -> None:
        raise AssertionError("an unchanged result file was re-hashed")

    monkeypatch.setattr(files, "damage", rehash)
    assert store.lookup(key) is not None


def test_a_result_file_replaced_by_the_same_bytes_is_rehashed_once_and_served(
    tmp_path: Path,
) -> None:
    store = ResultStore(tmp_path)
    key = put(store, 3)
    entry = store.get(key)
    assert entry is not None
    data = entry.path.read_bytes()
    entry.path.unlink()
    entry.path.write_bytes(data)  # new inode, same bytes (a restored backup, a copied store)
    assert store.lookup(key) is not None
    assert store.lookup(key) is not None


def test_put_rewrites_a_damaged_file_of_the_same_content_name(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    key = put(store, 4)
    entry = store.get(key)
    assert entry is not None
    change_in_place(entry.path)
    put(store, 4)  # the same bytes again: the damaged file must not be kept
    assert entry.path.read_bytes() == tiny_png(4)


# -- the hash memo ------------------------------------------------------------------------------


def test_memo_is_not_fooled_by_a_file_changed_in_place_with_its_mtime_put_back(
    tmp_path: Path, testdata: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Trust the memo at once (no settling time), so only the stamp decides.
    monkeypatch.setattr(memo_module, "memo_settle_ns", lambda stamp: 0)
    store = ResultStore(tmp_path / "cache")
    photo = tmp_path / "photo.png"
    photo.write_bytes((testdata / "chelsea.png").read_bytes())
    first = ImageRef(photo, memo=store).sha256
    assert ImageRef(photo, memo=store).sha256 == first
    data = bytearray(photo.read_bytes())
    data[-20] ^= 0xFF
    change_in_place(photo, bytes(data))
    assert ImageRef(photo, memo=store).sha256 != first


def test_memo_does_not_trust_a_hash_taken_right_after_a_change(
    tmp_path: Path, testdata: Path
) -> None:
    # A file rewritten within the same tick of the file clock as it was hashed has the same
    # stamp: the memo only answers for files that had settled when they were hashed.
    store = ResultStore(tmp_path / "cache")
    photo = tmp_path / "photo.png"
    photo.write_bytes((testdata / "chelsea.png").read_bytes())
    first = ImageRef(photo, memo=store).sha256
    data = bytearray(photo.read_bytes())
    data[-20] ^= 0xFF
    change_in_place(photo, bytes(data))
    assert ImageRef(photo, memo=store).sha256 != first


# -- a damaged index -----------------------------------------------------------------------------


def _store_with_entries(root: Path, n: int = 3) -> list[str]:
    store = ResultStore(root)
    keys = [put(store, i) for i in range(n)]
    store.close()
    assert not Path(f"{root}/index.sqlite-wal").exists()
    return keys


def _garbage(index: Path) -> None:
    index.write_bytes(b"this is not a database" * 100)


def _empty(index: Path) -> None:
    index.write_bytes(b"")


def _truncated(index: Path) -> None:
    data = index.read_bytes()
    index.write_bytes(data[: len(data) // 2])


def _folder(index: Path) -> None:
    index.unlink()
    index.mkdir()
    (index / "something").write_text("x")


def _deleted(index: Path) -> None:
    index.unlink()


@pytest.mark.parametrize("damage", [_garbage, _empty, _truncated, _folder, _deleted])
def test_a_damaged_index_in_any_form_is_rebuilt_with_one_warning(tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    keys = _store_with_entries(tmp_path)
    damage(tmp_path / "index.sqlite")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = ResultStore(tmp_path)
    assert len(caught) == 1 and "index" in str(caught[0].message)
    assert len(store) == 3 and store.stats().entries == 3
    assert all(store.lookup(k) is not None for k in keys)
    assert store.verify().index_ok


HOLDER = textwrap.dedent(
    """
    import sqlite3, sys, time
    con = sqlite3.connect({index!r}, isolation_level=None)
    con.execute("PRAGMA locking_mode=EXCLUSIVE")
    con.execute("BEGIN EXCLUSIVE")
    con.execute("INSERT INTO counters VALUES ('held', 1)")
    print("holding", flush=True)
    sys.stdin.read()
    """
)


def test_an_index_locked_by_another_process_is_a_clear_error_after_a_bounded_wait(
    tmp_path: Path,
) -> None:
    _store_with_entries(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(index=str(tmp_path / "index.sqlite"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(StoreError, match="locked by another process"):
            store = ResultStore(tmp_path, lock_timeout=0.2)
            put(store, 9)
    finally:
        holder.communicate("")
    # The lock gone, the store is whole.
    assert len(ResultStore(tmp_path)) == 3


# -- permissions ------------------------------------------------------------------------------


def _modes(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]
    }


def test_the_store_is_private_folders_0700_files_0600(tmp_path: Path, testdata: Path) -> None:
    root = tmp_path / "cache"
    proc = Processor(CountingBackend(), cache_dir=root)
    proc.run_sync("upscale", testdata / "chelsea.png")
    proc.run_sync("upscale", testdata / "chelsea.png")
    modes = _modes(root)
    assert any(name.endswith("-wal") for name in modes)
    assert any(name.startswith("locks/") for name in modes)
    assert any(name.startswith("results/") for name in modes)
    for name, mode in modes.items():
        expected = 0o700 if (root / name).is_dir() else 0o600
        assert mode == expected, f"{name} is {oct(mode)}"
    proc.close()


def test_a_root_shared_with_a_group_on_purpose_gives_the_group_access(tmp_path: Path) -> None:
    root = tmp_path / "team-cache"
    root.mkdir()
    root.chmod(0o2770)
    store = ResultStore(root)
    put(store, 1)
    for name, mode in _modes(root).items():
        if (root / name).is_dir():
            assert mode & 0o770 == 0o770, f"{name} is {oct(mode)}"
        else:
            assert mode & 0o777 == 0o660, f"{name} is {oct(mode)}"


@pytest.fixture
def default_umask() -> Iterator[None]:
    """The usual umask (022), which takes the group's write bit off whatever it is not
    explicitly given back."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def test_a_group_shared_root_gives_the_group_its_lock_and_journal_files_too(
    tmp_path: Path, testdata: Path, default_umask: None
) -> None:
    from nbimgprep.journal import RequestJournal

    root = tmp_path / "team-cache"
    root.mkdir()
    root.chmod(0o2770)
    proc = Processor(CountingBackend(), cache_dir=root)
    result = proc.run_sync("upscale", testdata / "chelsea.png")
    RequestJournal(root).write(result.key, "request-1", "fal-ai/esrgan")
    modes = _modes(root)
    # A group member can take the per-key lock (it is opened for writing) and resume the journal.
    assert modes[f"locks/{result.key}.lock"] == 0o660
    assert modes[f"journal/{result.key}.json"] == 0o660
    assert modes["journal"] == 0o2770 and modes["locks"] == 0o2770
    for name, mode in modes.items():
        assert mode & 0o777 == (0o770 if (root / name).is_dir() else 0o660), f"{name}: {oct(mode)}"
    proc.close()


# -- bad locations -------------------------------------------------------------------------------


def test_an_empty_cache_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="empty string"):
        ResultStore("")
    with pytest.raises(StoreError, match="empty string"):
        Processor(CountingBackend(), cache_dir="")


def test_a_cache_dir_that_is_a_file_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match=f"{blocker}.*is a file"):
        ResultStore(blocker)


def test_a_cache_dir_that_cannot_be_created_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match=f"Cannot create the cache directory {blocker}/cache"):
        ResultStore(blocker / "cache")


def test_an_index_from_an_older_version_keeps_its_entries_and_counts(tmp_path: Path) -> None:
    keys = _store_with_entries(tmp_path)
    store = ResultStore(tmp_path)
    store.lookup(keys[0])
    store.close()
    with sqlite3.connect(tmp_path / "index.sqlite") as con:  # as an older version left it
        con.execute("ALTER TABLE entries DROP COLUMN source")
        con.execute("DROP TABLE hash_memo")
        con.execute(
            "CREATE TABLE hash_memo (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, "
            "inode INTEGER, sha256 TEXT)"
        )
    con.close()
    reopened = ResultStore(tmp_path)
    assert len(reopened) == 3 and reopened.stats().hits == 1
    assert reopened.lookup(keys[1]) is not None
