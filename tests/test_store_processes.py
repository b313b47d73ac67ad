"""Several processes on one store: persistence, concurrent writers, one call per key."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from nbimgprep import ResultStore

RACER = textwrap.dedent(
    """
    import asyncio, os, sys
    sys.path.insert(0, {tests!r})
    from conftest import CountingBackend
    from nbimgprep import Processor

    class Logged(CountingBackend):
        async def run(self, *args, **kwargs):
            with open({log!r}, "a") as f:
                f.write(f"{{os.getpid()}}\\n")
            return await super().run(*args, **kwargs)

    start = {start!r}
    while not os.path.exists(start):
        pass
    r = Processor(Logged(delay=0.3), cache_dir={cache!r}).run_sync("upscale", {photo!r})
    print("hit" if r.cache_hit else "fresh")
    """
)

WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from test_store import put
    from nbimgprep import ResultStore
    store = ResultStore({cache!r})
    for n in range({first}, {first} + 50):
        put(store, n)
    """
)


def python(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def test_a_result_is_a_hit_from_a_new_process(tmp_path: Path, testdata: Path) -> None:
    code = (
        "from nbimgprep import Processor\n"
        f"r = Processor('local', cache_dir={str(tmp_path)!r}).run_sync("
        f"'upscale', {str(testdata / 'chelsea.png')!r}, scale=2)\n"
        "print(r.cache_hit)"
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert outputs == ["False", "True"]


def test_processes_racing_on_one_key_pay_once(tmp_path: Path, testdata: Path) -> None:
    log, start = tmp_path / "calls.log", tmp_path / "go"
    code = RACER.format(
        tests=str(Path(__file__).parent),
        log=str(log),
        start=str(start),
        cache=str(tmp_path / "cache"),
        photo=str(testdata / "rocket.jpg"),
    )
    racers = [python(code) for _ in range(4)]
    start.touch()
    answers = sorted(p.communicate(timeout=120)[0].strip() for p in racers)
    assert all(p.returncode == 0 for p in racers)
    assert len(log.read_text().splitlines()) == 1  # one backend call among four processes
    assert answers == ["fresh", "hit", "hit", "hit"]


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    ResultStore(cache)
    writers = [
        python(WRITER.format(tests=str(Path(__file__).parent), cache=str(cache), first=i * 50))
        for i in range(4)
    ]
    for w in writers:
        w.communicate(timeout=120)
        assert w.returncode == 0
    store = ResultStore(cache)
    assert len(store) == 200
    assert store.verify().damaged == []
    con = sqlite3.connect(cache / "index.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


MANY_WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from test_store import put
    from nbimgprep import ResultStore
    store = ResultStore({cache!r})
    for n in range({first}, {first} + {count}):
        put(store, n)
    print("done", flush=True)
    """
)

MAINTAINER = textwrap.dedent(
    """
    import os, sys
    from nbimgprep import ResultStore
    store = ResultStore({cache!r})
    rounds = 0
    while not os.path.exists({stop!r}) or rounds < 3:
        if {what!r} == "clean":
            store.clean(max_age_days=30)
            store.clean(max_age_days=None, missing=True)
        else:
            assert store.verify().damaged == []
        rounds += 1
    print("rounds", rounds, flush=True)
    """
)


def test_four_writers_a_cleaner_and_a_verifier_at_once_lose_nothing(tmp_path: Path) -> None:
    cache, stop, per_writer = tmp_path / "cache", tmp_path / "stop", 500
    ResultStore(cache).close()
    tests = str(Path(__file__).parent)
    run = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for code in [
            *(
                MANY_WRITER.format(tests=tests, cache=str(cache), first=i * 1000, count=per_writer)
                for i in range(4)
            ),
            MAINTAINER.format(cache=str(cache), stop=str(stop), what="clean"),
            MAINTAINER.format(cache=str(cache), stop=str(stop), what="verify"),
        ]
    ]
    writers, maintainers = run[:4], run[4:]
    outputs = [w.communicate(timeout=600) for w in writers]
    stop.touch()
    outputs += [m.communicate(timeout=600) for m in maintainers]
    for process, (_out, err) in zip(run, outputs, strict=True):
        assert process.returncode == 0, err
        assert "locked" not in err
    store = ResultStore(cache)
    assert len(store) == 4 * per_writer
    assert store.verify().damaged == []
    con = sqlite3.connect(cache / "index.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
