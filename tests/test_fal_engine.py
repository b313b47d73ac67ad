"""The whole fal path through the engine: Processor -> cache -> FalBackend -> real fal_client ->
the fake fal server (tests/fakefal.py). What a user pays for is what the server counts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest
from ipywidgets import Widget
from PIL import Image

from fakefal import FakeFal, Fault, fake_fal  # noqa: F401  (fake_fal is a fixture)
from nbimgprep import ImagePrep, Processor
from nbimgprep.errors import (
    BackendError,
    FalKeyMissing,
    FalKeyRejected,
    FalTimeout,
    InvalidResult,
    RateLimited,
)
from nbimgprep.journal import RequestJournal
from nbimgprep.processor import ProgressEvent

TESTDATA = Path(__file__).parent.parent.parent / "shared" / "testdata"
KEY = "fake-key-id:fake-key-secret"


def photo(name: str) -> Path:
    path = TESTDATA / name
    assert path.is_file(), f"missing test photo {path}"
    return path


@pytest.fixture
def proc(fake_fal: FakeFal, tmp_path: Path) -> Processor:  # noqa: F811
    return Processor(
        backend="fal", cache_dir=tmp_path / "cache", environ={"FAL_KEY": KEY}, timeout=10
    )


async def test_a_fresh_call_then_a_hit_submits_once(
    fake_fal: FakeFal,  # noqa: F811
    proc: Processor,
) -> None:
    events: list[ProgressEvent] = []

    fresh = await proc.run("remove_background", photo("coffee.png"), on_progress=events.append)
    again = await proc.run("remove_background", photo("coffee.png"))

    assert (fresh.cache_hit, again.cache_hit) == (False, True)
    assert fresh.backend == "fal" and fresh.endpoint == "fal-ai/birefnet/v2"
    assert again.path == fresh.path and again.image.mode == "RGBA"
    assert fake_fal.calls["submit"] == 1 and fake_fal.calls["download"] == 1
    (entry,) = proc.store.entries()
    (request_id,) = fake_fal.requests
    assert entry.request_id == request_id
    assert entry.remote_url == f"{fake_fal.url}/files/out/{request_id}.png"
    assert entry.endpoint_arguments == {}
    kinds = [e.kind for e in events]
    assert kinds[0] == "queued" and kinds[-1] == "done" and "running" in kinds


async def test_thirty_identical_calls_at_once_submit_once(
    fake_fal: FakeFal,  # noqa: F811
    proc: Processor,
) -> None:
    fake_fal.hold()
    started = asyncio.Event()

    def on_progress(event: ProgressEvent) -> None:
        if event.kind == "running":
            started.set()

    calls = [
        asyncio.create_task(
            proc.run("upscale", photo("chelsea.png"), scale=2, on_progress=on_progress)
        )
        for _ in range(30)
    ]
    await started.wait()
    fake_fal.release()
    results = await asyncio.gather(*calls)

    assert fake_fal.calls["submit"] == 1
    assert {r.path for r in results} == {results[0].path}
    assert results[0].image.size == (902, 600)


async def test_other_endpoint_arguments_are_another_key(
    fake_fal: FakeFal,  # noqa: F811
    tmp_path: Path,
) -> None:
    def processor(checkpoint: str) -> Processor:
        return Processor(
            backend="fal",
            cache_dir=tmp_path / "cache",
            environ={"FAL_KEY": KEY},
            endpoints={"upscale": ("fal-ai/aura-sr", {"checkpoint": checkpoint})},
        )

    crop = (0, 0, 64, 48)
    v1 = await processor("v1").run(
        "upscale", processor("v1").image(photo("chelsea.png")).crop(crop)
    )
    v2 = await processor("v2").run(
        "upscale", processor("v2").image(photo("chelsea.png")).crop(crop)
    )
    v1_again = await processor("v1").run(
        "upscale", processor("v1").image(photo("chelsea.png")).crop(crop)
    )

    assert (v1.cache_hit, v2.cache_hit, v1_again.cache_hit) == (False, False, True)
    assert v1.key != v2.key and v1_again.key == v1.key
    assert fake_fal.calls["submit"] == 2
    assert [a["checkpoint"] for a in fake_fal.submitted_arguments] == ["v1", "v2"]


FAILURES = {
    "completed with error": (lambda f: setattr(f, "outcome", "error"), BackendError),
    "expired result": (lambda f: setattr(f, "outcome", "expired"), BackendError),
    "not an image": (lambda f: setattr(f, "outcome", "not_image"), BackendError),
    "oversized": (lambda f: setattr(f, "outcome", "oversized"), BackendError),
    "500 on submit": (lambda f: f.fail("submit", status=500), BackendError),
    "malformed status": (lambda f: f.fail("status", malformed=True), BackendError),
    "download keeps failing": (
        lambda f: f.fail("download", Fault(status=503, body=b"x"), times=3),
        BackendError,
    ),
    "never completes": (lambda f: f.hold(), FalTimeout),
    "429 past the retries": (lambda f: f.fail("submit", status=429, times=10), RateLimited),
    "connection reset on every submit": (
        lambda f: f.fail("submit", drop=True, times=10),
        BackendError,
    ),
    "malformed result JSON": (lambda f: f.fail("result", malformed=True), InvalidResult),
    "app 503 on the status": (
        lambda f: f.fail("status", status=503, headers={"x-fal-request-id": "x"}),
        BackendError,
    ),
}


@pytest.mark.parametrize("failure", FAILURES)
async def test_nothing_is_cached_on_any_failure(
    fake_fal: FakeFal,  # noqa: F811
    tmp_path: Path,
    failure: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import fal_client.client

    monkeypatch.setattr(fal_client.client, "_get_retry_delay", lambda *args, **kw: 0.001)
    arrange, error = FAILURES[failure]
    proc = Processor(
        backend="fal",
        cache_dir=tmp_path / "cache",
        environ={"FAL_KEY": KEY},
        timeout=2 if failure == "never completes" else 10,
    )
    if failure == "oversized":
        proc.backend.max_result_bytes = 1_000_000  # type: ignore[attr-defined]
    arrange(fake_fal)

    with pytest.raises(error):
        await proc.run("remove_background", photo("chelsea.png"))

    assert proc.store.entries() == []
    assert not [p for p in proc.store.root.rglob("*.png")]
    fake_fal.release()
    fake_fal.outcome = "ok"
    proc.backend.timeout = 10  # type: ignore[attr-defined]
    retry = await proc.run("remove_background", photo("chelsea.png"))
    assert not retry.cache_hit


async def test_a_missing_key_is_a_clear_error_at_the_first_run(
    fake_fal: FakeFal,  # noqa: F811
    tmp_path: Path,
) -> None:
    proc = Processor(backend="fal", cache_dir=tmp_path / "cache", environ={})

    with pytest.raises(FalKeyMissing, match="export FAL_KEY"):
        await proc.run("upscale", photo("chelsea.png"))
    with pytest.raises(FalKeyMissing):
        await asyncio.to_thread(proc.run_sync, "upscale", photo("chelsea.png"))

    assert sum(fake_fal.calls.values()) == 0
    proc.close()


def test_run_sync_and_asyncio_run_share_one_processor(
    fake_fal: FakeFal,  # noqa: F811
    proc: Processor,
) -> None:
    """run_sync's private loop and a caller's loop each get their own fal client."""
    first = proc.run_sync("face_detail", photo("chelsea.png"))
    second = asyncio.run(proc.run("face_detail", photo("chelsea.png"), refresh=True))
    third = proc.run_sync("face_detail", photo("chelsea.png"), refresh=True)

    assert [r.cache_hit for r in (first, second, third)] == [False, False, False]
    assert fake_fal.calls["submit"] == 3
    proc.close()


SENTINEL = "SENTINELKEYID-4f1c:SENTINELSECRET-9a7e"


async def test_the_key_never_leaks(
    fake_fal: FakeFal,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """FAL_KEY set to a sentinel; successes and every kind of failure (the widget's too); then
    the sentinel (and each half of it) is searched in every output, log record, exception,
    progress event, widget state and file of the run (the store and its journal included)."""
    import fal_client.client

    monkeypatch.setattr(fal_client.client, "_get_retry_delay", lambda *args, **kw: 0.001)
    caplog.set_level(logging.DEBUG)
    fake_fal.keys = {SENTINEL}
    proc = Processor(
        backend="fal", cache_dir=tmp_path / "cache", environ={"FAL_KEY": SENTINEL}, timeout=30
    )
    proc.backend.data_uri_limit = 100_000  # type: ignore[attr-defined]  # upload too
    proc.backend.max_result_bytes = 2_000_000  # type: ignore[attr-defined]
    texts: list[str] = [repr(proc), repr(proc.backend)]
    events: list[ProgressEvent] = []

    async def attempt(operation: str, refresh: bool = False, **params: object) -> None:
        try:
            result = await proc.run(
                operation,
                photo("chelsea.png"),
                refresh=refresh,
                on_progress=events.append,
                **params,
            )
            texts.extend([repr(result), str(result._repr_mimebundle_())[:100_000]])
        except Exception as exc:
            texts.extend([str(exc), repr(exc), "".join(traceback.format_exception(exc))])

    await attempt("remove_background")
    await attempt("remove_background")  # a hit
    fake_fal.fail("submit", status=500, body=b'{"detail": "boom"}')
    await attempt("upscale")
    fake_fal.fail("status", malformed=True)
    await attempt("upscale", scale=4)
    fake_fal.outcome = "error"
    await attempt("face_detail")
    fake_fal.outcome = "ok"
    fake_fal.hold()
    proc.backend.timeout = 1  # type: ignore[attr-defined]
    await attempt("face_detail")  # times out, cancelled on the server
    proc.backend.timeout = 30  # type: ignore[attr-defined]
    fake_fal.release()
    for outcome in ("expired", "not_image", "oversized"):
        fake_fal.outcome = outcome
        await attempt("upscale", scale=2, refresh=True)
    fake_fal.outcome = "ok"
    fake_fal.fail("stream", drop=True)
    fake_fal.fail("stream", malformed=True, times=3)
    await attempt("upscale", scale=2, refresh=True)  # the stream fails, then polling
    fake_fal.fail("submit", status=429, headers={"Retry-After": "3"}, times=10)
    await attempt("face_detail", refresh=True)  # RateLimited
    key = proc.key_for("remove_background", photo("chelsea.png"))
    RequestJournal(proc.store.root).write(key, "no-such-request", "fal-ai/birefnet/v2")
    await attempt("remove_background", refresh=True)  # resumed: 404, submitted afresh
    prep = ImagePrep(photo("chelsea.png"), processor=proc)
    fake_fal.fail("submit", status=500, body=b'{"detail": "boom"}')
    with contextlib.suppress(Exception):
        await prep.apply("upscale", scale=4)  # the error is shown in the widget
    await prep.apply("remove_background")
    texts.append(json.dumps(Widget.get_manager_state(), default=repr))
    fake_fal.keys = {"another:key"}
    await attempt("upscale", refresh=True)  # FAL_KEY rejected
    for store in (tmp_path,):
        for path in store.rglob("*"):
            if path.is_file():
                texts.append(path.read_bytes().decode("latin-1"))
    captured = capsys.readouterr()
    texts += [captured.out, captured.err, caplog.text, repr(events)]
    texts += [r.getMessage() for r in caplog.records]

    assert any("FAL_KEY rejected" in t for t in texts)
    assert any("did not finish within" in t for t in texts)
    assert any("kept rate-limiting" in t for t in texts)
    assert any("not an image" in t for t in texts) and any("is gone" in t for t in texts)
    assert fake_fal.calls["stream"] >= 4 and RequestJournal(proc.store.root).pending_keys() == []
    for text in texts:
        for secret in (SENTINEL, *SENTINEL.split(":")):
            assert secret not in text
    assert fake_fal.calls["cancel"] >= 1
    await proc.aclose()


async def test_a_rejected_key_through_the_engine(fake_fal: FakeFal, tmp_path: Path) -> None:  # noqa: F811
    proc = Processor(backend="fal", cache_dir=tmp_path / "c", environ={"FAL_KEY": "no:pe"})

    with pytest.raises(FalKeyRejected, match="FAL_KEY rejected"):
        await proc.run("remove_background", photo("chelsea.png"))

    assert proc.store.entries() == []


async def test_a_store_whose_lock_folder_cannot_be_written_still_runs_calls(
    fake_fal: FakeFal,  # noqa: F811
    proc: Processor,
) -> None:
    """Without its lock folder the store loses the cross-process guarantee, not its use."""
    locks = proc.store.lock_path("any").parent
    shutil.rmtree(locks, ignore_errors=True)
    locks.write_text("not a folder")  # what a read-only or broken folder looks like to open()

    fresh = await asyncio.wait_for(proc.run("face_detail", photo("chelsea.png")), 10)
    again = await proc.run("face_detail", photo("chelsea.png"))

    assert (fresh.cache_hit, again.cache_hit) == (False, True)
    assert fake_fal.calls["submit"] == 1


# -- a run killed in the middle: resumed, never paid twice ------------------------------------

KILLED_RUN = """
import asyncio, sys
from fakefal import point_fal_client_at
from nbimgprep import ImagePrep, Processor

point_fal_client_at(sys.argv[1])
proc = Processor(backend="fal", cache_dir=sys.argv[2], environ={"FAL_KEY": sys.argv[3]})

async def main():
    await asyncio.gather(*(proc.run("upscale", path, scale=2) for path in sys.argv[4:]))

asyncio.run(main())
"""


def four_images(folder: Path) -> list[Path]:
    paths = []
    with Image.open(photo("chelsea.png")) as img:
        for i in range(4):
            path = folder / f"crop{i}.png"
            img.crop((i * 40, 0, i * 40 + 64, 48)).save(path)
            paths.append(path)
    return paths


async def test_a_killed_run_is_resumed_without_paying_twice(
    fake_fal: FakeFal,  # noqa: F811
    tmp_path: Path,
) -> None:
    """kill -9 while four requests run on fal.ai; the next run re-attaches to the two still
    there, and pays again only for the one that expired and the one that failed meanwhile."""
    cache, images = tmp_path / "cache", four_images(tmp_path)
    journal = RequestJournal(cache)
    fake_fal.hold()  # the requests run until released
    tests = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent / "src"), str(tests)])}
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, fake_fal.url, str(cache), KEY, *map(str, images)],
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while len(journal.pending_keys()) < 4 or fake_fal.states().count("IN_PROGRESS") < 4:
            assert child.poll() is None and time.monotonic() < deadline, "child never got there"
            await asyncio.sleep(0.05)
    finally:
        child.kill()  # SIGKILL: no cleanup, no cancel sent to fal.ai
        child.wait()
    assert fake_fal.calls["submit"] == 4 and fake_fal.calls["cancel"] == 0
    first = {journal.read(key).request_id: key for key in journal.pending_keys()}  # type: ignore[union-attr]
    assert set(first) == set(fake_fal.requests)
    expired, failed, *kept = sorted(first)
    fake_fal.forget(expired)  # fal no longer knows it: 404
    fake_fal.requests[failed].outcome = "error"  # it will complete with an error
    fake_fal.requests[failed].error = "CUDA error: out of memory"
    fake_fal.release()

    proc = Processor(backend="fal", cache_dir=cache, environ={"FAL_KEY": KEY}, timeout=30)
    results = await asyncio.gather(*(proc.run("upscale", p, scale=2) for p in images))

    assert [r.image.size for r in results] == [(128, 96)] * 4
    assert fake_fal.calls["submit"] == 4 + 2, "only the expired and the failed one again"
    entries = {e.key: e.request_id for e in proc.store.entries()}
    assert {entries[first[rid]] for rid in kept} == set(kept), "the two live ones re-attached"
    assert entries[first[expired]] != expired and entries[first[failed]] != failed
    assert journal.pending_keys() == [], "a stored result leaves nothing in the journal"
    again = await asyncio.gather(*(proc.run("upscale", p, scale=2) for p in images))
    assert all(r.cache_hit for r in again) and fake_fal.calls["submit"] == 6


async def test_a_journal_entry_is_written_at_submit_and_private(
    fake_fal: FakeFal,  # noqa: F811
    proc: Processor,
) -> None:
    fake_fal.hold()
    journal = RequestJournal(proc.store.root)
    call = asyncio.create_task(proc.run("face_detail", photo("chelsea.png")))
    while not journal.pending_keys():
        await asyncio.sleep(0.01)

    (key,) = journal.pending_keys()
    (request_id,) = fake_fal.requests
    pending = journal.read(key)
    assert pending is not None and pending.request_id == request_id
    assert pending.endpoint == "fal-ai/codeformer"
    if os.name == "posix":
        assert stat.S_IMODE(journal.folder.stat().st_mode) == 0o700
        assert stat.S_IMODE((journal.folder / f"{key}.json").stat().st_mode) == 0o600
    fake_fal.release()
    result = await call
    assert result.key == key and journal.pending_keys() == []


async def test_a_failed_call_leaves_no_journal_entry(
    fake_fal: FakeFal,  # noqa: F811
    proc: Processor,
) -> None:
    fake_fal.outcome = "error"

    with pytest.raises(BackendError):
        await proc.run("face_detail", photo("chelsea.png"))

    assert RequestJournal(proc.store.root).pending_keys() == []
