"""A store this process cannot write to (a read-only mount, a colleague's cache, a full quota)
still serves: hits come back (uncounted), list/find/stats/verify/export work, a miss returns
its result uncached with one warning per process, and a clean that cannot delete leaves the
index and the files agreeing.

Permissions do not stop root, so when the tests run as root (as in CI containers) the code that
uses the store runs as the unprivileged user ``nobody`` (through ``setpriv``); otherwise it runs
as the current user, for whom the chmod is enough.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbimgprep import ResultStore
from test_store import put
from test_store_trust import change_in_place

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
NOBODY = 65534
AS_ROOT = os.geteuid() == 0


def run_as_other_user(code: str) -> dict[str, object]:
    """Run ``code`` in a new Python as a user without write access; returns its JSON output."""
    command = [sys.executable, "-c", code]
    if AS_ROOT:
        if shutil.which("setpriv") is None:
            pytest.fail("running as root needs setpriv (util-linux) to test a read-only store")
        command = [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            *command,
        ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    if AS_ROOT and not _other_user_can_import(command[:-2], env):
        pytest.skip(
            "the checkout or its .venv lies in a folder the user nobody cannot read "
            "(e.g. under a 0700 mktemp -d), so a read-only reader cannot be started"
        )
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _other_user_can_import(prefix: list[str], env: dict[str, str]) -> bool:
    """Whether ``prefix`` (setpriv ... python) can import nbimgprep and the test helpers."""
    probe = [*prefix, "-c", "import PIL, nbimgprep, conftest"]
    return subprocess.run(probe, capture_output=True, env=env, timeout=60).returncode == 0


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder another user can reach (pytest's tmp_path is private to its user)."""
    folder = Path(tempfile.mkdtemp(prefix="nbimgprep-ro-test-"))
    folder.chmod(0o755)
    yield folder
    for p in [folder, *folder.rglob("*")]:
        if not p.is_symlink():
            p.chmod(0o700 if p.is_dir() else 0o600)
    shutil.rmtree(folder)


def make_read_only(root: Path) -> None:
    """As a colleague's store looks to us: readable by all, writable by nobody."""
    for p in [root, *root.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


READER = textwrap.dedent(
    """
    import json, os, warnings
    from conftest import CountingBackend
    from nbimgprep import Processor, ResultStore, StoreError

    out = {{}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = ResultStore({root!r})
        out["read_only"] = store.read_only
        out["hit"] = store.lookup({good!r}) is not None
        out["damaged_served"] = store.lookup({damaged!r}) is not None
        out["hits_after"] = store.stats().hits
        out["listed"] = len(store.entries())
        out["found"] = len(store.find({good!r}[:10]))
        report = store.verify(fix=True)
        out["verify"] = [report.checked, len(report.damaged), report.fixed]
        done = store.export_legacy_json({export!r})
        out["exported"] = done.exported + sum(done.left_out.values())  # every entry looked at
        backend = CountingBackend()
        out["misses"] = []
        for scale in (2, 4):  # two Processors, two misses: one warning
            proc = Processor(backend, store=store)
            r = proc.run_sync("upscale", {photo!r}, scale=scale)
            out["misses"].append([r.cache_hit, os.path.exists(r.path)])
        for attempt in (lambda: store.clean(max_age_days=0), lambda: store.delete({good!r})):
            try:
                attempt()
                out.setdefault("removals", []).append("removed")
            except StoreError as exc:
                out.setdefault("removals", []).append(str(exc))
    out["warnings"] = [str(w.message) for w in caught]
    print(json.dumps(out))
    """
)


@pytest.mark.parametrize("writer_still_open", [False, True], ids=["closed", "wal-left"])
def test_a_read_only_store_serves_hits_and_returns_misses_uncached(
    shared_folder: Path, testdata: Path, writer_still_open: bool
) -> None:
    root = shared_folder / "cache"
    writer = ResultStore(root)
    good, damaged = put(writer, 1), put(writer, 2)
    hits_before = writer.stats().hits
    change_in_place(writer.get(damaged).path)  # type: ignore[union-attr]
    if not writer_still_open:
        writer.close()
    photo = shared_folder / "photo.png"
    shutil.copy(testdata / "chelsea.png", photo)
    out_dir = shared_folder / "out"
    out_dir.mkdir(mode=0o777)
    out_dir.chmod(0o777)
    make_read_only(root)
    before = snapshot(root)

    out = run_as_other_user(
        READER.format(
            root=str(root),
            good=good,
            damaged=damaged,
            export=str(out_dir / "legacy.json"),
            photo=str(photo),
        )
    )

    assert out["read_only"] is True
    assert out["hit"] is True and out["damaged_served"] is False
    assert out["hits_after"] == hits_before  # hit counters are not updated
    assert out["listed"] == 2 and out["found"] == 1
    assert out["verify"] == [2, 1, False]  # reported, not fixed
    assert out["exported"] == 2
    assert out["misses"] == [[False, True], [False, True]]
    removals = out["removals"]
    assert isinstance(removals, list)
    assert all("read-only" in str(r) for r in removals)
    warnings = out["warnings"]
    assert isinstance(warnings, list)
    assert [w for w in warnings if "NOT cached" in w] == [warnings[0]]
    assert len(warnings) == 1, warnings
    assert snapshot(root) == before  # nothing on disk changed


CLEANER = textwrap.dedent(
    """
    import json
    from nbimgprep import ResultStore
    store = ResultStore({root!r})
    outcome = store.clean(max_age_days=0)
    print(json.dumps({{"removed": len(outcome.removed), "left": len(store)}}))
    """
)


def test_a_clean_that_cannot_delete_sidecars_leaves_index_and_files_agreeing(
    shared_folder: Path,
) -> None:
    root = shared_folder / "cache"
    writer = ResultStore(root)
    keys = [put(writer, n) for n in range(4)]
    writer.close()
    if AS_ROOT:
        for p in [root, *root.rglob("*")]:
            os.chown(p, NOBODY, NOBODY)
    for folder in (root / "entries").iterdir():  # the index is writable, the sidecars are not
        folder.chmod(0o555)
    out = run_as_other_user(CLEANER.format(root=str(root)))
    assert out == {"removed": 0, "left": 4}
    for folder in (root / "entries").iterdir():
        folder.chmod(0o755)
    store = ResultStore(root)
    assert len(list((root / "entries").glob("*/*.json"))) == len(store) == 4
    assert all(store.lookup(k) is not None for k in keys)
