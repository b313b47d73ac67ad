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
