"""Crash safety: a writer killed (SIGKILL) at any point inside put or clean leaves a store that
opens, passes SQLite's integrity check, has no entry pointing to a missing or partial file, and
still holds every put that returned before the kill. What dead writers leave in tmp/, and the
files of results that could not be cached, do not stay for ever.

10 rounds by default; ``NBIMGPREP_LONG_TESTS=1`` runs 50.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from nbimgprep import ResultStore

TESTS = Path(__file__).resolve().parent
ROUNDS = 50 if os.environ.get("NBIMGPREP_LONG_TESTS") == "1" else 10

WRITER = textwrap.dedent(
    """
    import os, signal, sys, time
    sys.path.insert(0, {tests!r})
    from test_store import put, tiny_png
    from nbimgprep import ResultStore
    from nbimgprep.operations import Endpoint, cache_key
    from nbimgprep.store import ResultMeta

    # Die by SIGKILL just before or just after the {kill_at}th file-system step (fsync, rename,
    # unlink): every point between the steps of put and clean gets its turn.
    steps = [0]
    def dying(real):
        def step(*args, **kwargs):
            steps[0] += 1
            if steps[0] == {kill_at}:
                os.kill(os.getpid(), signal.SIGKILL)
            result = real(*args, **kwargs)
            steps[0] += 1
            if steps[0] == {kill_at}:
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        return step
    store = ResultStore({root!r})
    os.fsync, os.replace, os.unlink = map(dying, (os.fsync, os.replace, os.unlink))

    n = {first}
    while True:
        key = put(store, n)
        print("kept", key, flush=True)  # only after put returned
        old = cache_key(f"{{n:064x}}", "face_detail", Endpoint("local/face_detail"), {{}})
        meta = ResultMeta(f"{{n:064x}}", "face_detail", Endpoint("local/face_detail"), {{}},
                          "local", 4, 3, created=time.time() - 40 * 86400)
        store.put(old, tiny_png((n + 128) % 256), meta)
        if n % 2:
            store.clean(max_age_days=30)  # removes the old ones, never a kept one
        n += 1
    """
)


def test_a_writer_killed_inside_put_and_clean_never_breaks_the_store(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    ResultStore(root).close()
    rng = random.Random(20261201)
    kept: list[str] = []
    for round_ in range(ROUNDS):
        kill_at = rng.randint(1, 150)
        code = WRITER.format(tests=str(TESTS), root=str(root), first=round_ * 1000, kill_at=kill_at)
        writer = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert writer.returncode == -signal.SIGKILL, writer.stderr
        kept += [line.split()[1] for line in writer.stdout.splitlines() if line.startswith("kept")]

        store = ResultStore(root)
        with sqlite3.connect(root / "index.sqlite") as con:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()
        report = store.verify(fix=False)
        assert report.damaged == [], f"round {round_} (step {kill_at}): {report.damaged}"
        missing = [k for k in kept if store.lookup(k) is None]
        assert missing == [], f"round {round_} (step {kill_at}): puts that returned are gone"
        store.close()
    assert len(kept) > ROUNDS  # the kills landed after some puts, not all at the first step


def test_leftover_temporary_files_are_removed_at_open_once_a_few_minutes_old(
    tmp_path: Path,
) -> None:
    ResultStore(tmp_path).close()
    old, young = tmp_path / "tmp" / "abandoned", tmp_path / "tmp" / "being-written"
    old.write_bytes(b"half a result")
    young.write_bytes(b"half a result")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    ResultStore(tmp_path)
    assert not old.exists()
    assert young.exists()  # perhaps another process is writing it right now


UNCACHED = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    import warnings
    warnings.simplefilter("ignore")
    from conftest import CountingBackend
    from nbimgprep import Processor, ResultStore, StoreError

    class FullDisk(ResultStore):
        def put(self, *args, **kwargs):
            raise StoreError("No space left on device.")

    proc = Processor(CountingBackend(), store=FullDisk({root!r}))
    r = proc.run_sync("upscale", {photo!r})
    print(r.cache_hit, r.path, r.path.exists(), flush=True)
    if {die!r}:
        import os, signal
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_results_returned_uncached_leave_no_temporary_file_behind(
    tmp_path: Path, testdata: Path
) -> None:
    def run(die: bool) -> tuple[Path, subprocess.CompletedProcess[str]]:
        code = UNCACHED.format(
            tests=str(TESTS),
            root=str(tmp_path / "cache"),
            photo=str(testdata / "chelsea.png"),
            die=die,
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        cache_hit, path, existed = done.stdout.split()
        assert (cache_hit, existed) == ("False", "True"), done.stderr
        return Path(path), done

    path, done = run(die=False)
    assert done.returncode == 0 and not path.exists()  # removed when the process exited
    killed, done = run(die=True)
    assert done.returncode == -signal.SIGKILL and killed.exists()
    path, _ = run(die=False)  # the next process that needs the folder removes the dead one's
    assert not killed.parent.exists()
