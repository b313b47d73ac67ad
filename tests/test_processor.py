"""The engine as a user drives it: hits, misses, single flight, refresh, errors, progress."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import pytest
from PIL import Image

from conftest import TESTDATA, CountingBackend
from nbimgprep import (
    BackendError,
    ImageError,
    InvalidResult,
    OperationError,
    ProcessingCancelled,
    Processor,
    ProgressEvent,
    Result,
)
from nbimgprep.backends import BackendOutput


@pytest.fixture
def proc(cache_dir: Path, counting_backend: CountingBackend) -> Processor:
    return Processor(counting_backend, cache_dir=cache_dir)


def test_second_call_is_a_hit_with_the_same_result(proc: Processor, testdata: Path) -> None:
    photo = testdata / "astronaut.png"
    first = proc.run_sync("upscale", photo, scale=2)
    second = proc.run_sync("upscale", photo, scale=2)
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert second.path == first.path and second.key == first.key
    assert second.image.size == (1024, 1024)
    assert first.backend == "local" and first.endpoint == "test/upscale"
    assert first.params == {"scale": 2} and first.operation == "upscale"
    assert proc.backend.calls == 1  # type: ignore[attr-defined]
    stats = proc.store.stats()
    assert (stats.hits, stats.misses) == (1, 1)


async def test_await_run_in_a_running_loop(proc: Processor, testdata: Path) -> None:
    r = await proc.run("face_detail", testdata / "chelsea.png")
    assert isinstance(r, Result) and not r.cache_hit
    assert (await proc.run("face_detail", testdata / "chelsea.png")).cache_hit


def test_explicit_default_is_the_same_key_and_a_changed_param_is_not(
    proc: Processor, testdata: Path
) -> None:
    photo = testdata / "chelsea.png"
    proc.run_sync("upscale", photo)
    assert proc.run_sync("upscale", photo, scale=2).cache_hit
    assert not proc.run_sync("upscale", photo, scale=4).cache_hit
    assert proc.key_for("upscale", photo) == proc.key_for("upscale", photo, scale=2)
    assert proc.key_for("upscale", photo) != proc.key_for("remove_background", photo)


def test_refresh_calls_again_and_replaces_the_entry(proc: Processor, testdata: Path) -> None:
    photo = testdata / "chelsea.png"
    proc.run_sync("remove_background", photo)
    again = proc.run_sync("remove_background", photo, refresh=True)
    assert not again.cache_hit
    assert proc.backend.calls == 2  # type: ignore[attr-defined]
    assert len(proc.store) == 1
    assert proc.run_sync("remove_background", photo).cache_hit


def test_hits_survive_a_new_processor(cache_dir: Path, testdata: Path) -> None:
    Processor(CountingBackend(), cache_dir=cache_dir).run_sync("upscale", testdata / "rocket.jpg")
    fresh_backend = CountingBackend()
    r = Processor(fresh_backend, cache_dir=cache_dir).run_sync("upscale", testdata / "rocket.jpg")
    assert r.cache_hit and fresh_backend.calls == 0


async def test_twenty_concurrent_identical_calls_make_one_backend_call(
    proc: Processor, counting_backend: CountingBackend, testdata: Path
) -> None:
    counting_backend.gate = asyncio.Event()
    calls = [asyncio.create_task(proc.run("upscale", testdata / "coffee.png")) for _ in range(20)]
    while counting_backend.calls == 0:
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)  # let the other 19 reach the in-flight table
    counting_backend.gate.set()
    results = await asyncio.gather(*calls)
    assert counting_backend.calls == 1
    # All twenty shared the one call in flight: none of them came back later as a hit
    # (which is what callers serialised on the per-key file lock would see instead).
    assert [r.cache_hit for r in results] == [False] * 20
    assert len({r.path for r in results}) == 1
    assert all(r.image.size == (1200, 800) for r in results[:1])


def test_progress_events_tell_the_story(proc: Processor, testdata: Path) -> None:
    seen: list[ProgressEvent] = []
    proc.run_sync("upscale", testdata / "rocket.jpg", on_progress=seen.append)
    assert [e.kind for e in seen] == ["queued", "running", "done"]
    assert seen[0].position == 1 and seen[1].logs == ("working",)
    seen.clear()
    proc.run_sync("upscale", testdata / "rocket.jpg", on_progress=seen.append)
    assert [e.kind for e in seen] == ["hit"]


def test_a_failing_progress_callback_does_not_sink_the_call(
    proc: Processor, testdata: Path
) -> None:
    def broken(event: ProgressEvent) -> None:
        raise ZeroDivisionError

    with pytest.warns(RuntimeWarning, match="on_progress"):
        assert proc.run_sync("upscale", testdata / "rocket.jpg", on_progress=broken).path.exists()


def test_errors_are_never_cached(
    proc: Processor, counting_backend: CountingBackend, testdata: Path
) -> None:
    counting_backend.fail_with = BackendError("model exploded")
    with pytest.raises(BackendError, match="model exploded"):
        proc.run_sync("upscale", testdata / "rocket.jpg")
    assert len(proc.store) == 0
    counting_backend.fail_with = None
    assert not proc.run_sync("upscale", testdata / "rocket.jpg").cache_hit


def test_a_result_that_is_not_an_image_is_refused(cache_dir: Path, testdata: Path) -> None:
    class Garbage(CountingBackend):
        async def run(self, *args: object, **kwargs: object) -> BackendOutput:
            return BackendOutput(b"<html>502 Bad Gateway</html>", "text/html")

    proc = Processor(Garbage(), cache_dir=cache_dir)
    with pytest.raises(InvalidResult, match="Nothing was cached"):
        proc.run_sync("face_detail", testdata / "rocket.jpg")
    assert len(proc.store) == 0


@pytest.mark.parametrize(
    "name", ["rocket_truncated.jpg", "not_an_image.jpg", "empty.png", "bomb_40000x40000.png"]
)
def test_bad_input_is_refused_before_any_backend_call(
    proc: Processor, testdata: Path, name: str
) -> None:
    with pytest.raises(ImageError, match=name):
        proc.run_sync("upscale", testdata / name)
    assert proc.backend.calls == 0  # type: ignore[attr-defined]


def test_upscale_past_100_megapixels_is_refused_before_calling(
    proc: Processor, testdata: Path
) -> None:
    with pytest.raises(OperationError, match="100 MP"):
        proc.run_sync("upscale", testdata / "coffee_24mp.jpg", scale=4)
    assert proc.backend.calls == 0  # type: ignore[attr-defined]


def test_unknown_operation_and_bad_params_are_clear(proc: Processor, testdata: Path) -> None:
    with pytest.raises(OperationError, match="use one of remove_background, upscale"):
        proc.run_sync("sharpen", testdata / "rocket.jpg")
    with pytest.raises(OperationError, match="scale=3 is not allowed"):
        proc.run_sync("upscale", testdata / "rocket.jpg", scale=3)
    with pytest.raises(OperationError, match="does not take strength"):
        proc.run_sync("face_detail", testdata / "rocket.jpg", strength=2)


async def test_cancelling_the_caller_cancels_the_backend_call(
    proc: Processor, counting_backend: CountingBackend, testdata: Path
) -> None:
    counting_backend.gate = asyncio.Event()
    task = asyncio.create_task(proc.run("upscale", testdata / "rocket.jpg"))
    while counting_backend.calls == 0:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(proc.store) == 0
    counting_backend.gate.set()
    assert not (await proc.run("upscale", testdata / "rocket.jpg")).cache_hit


async def test_one_cancelled_waiter_leaves_the_others_their_result(
    proc: Processor, counting_backend: CountingBackend, testdata: Path
) -> None:
    counting_backend.gate = asyncio.Event()
    quitter = asyncio.create_task(proc.run("upscale", testdata / "rocket.jpg"))
    stayer = asyncio.create_task(proc.run("upscale", testdata / "rocket.jpg"))
    while counting_backend.calls == 0:
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    quitter.cancel()
    counting_backend.gate.set()
    assert not (await stayer).cache_hit
    assert counting_backend.calls == 1
    with pytest.raises((asyncio.CancelledError, ProcessingCancelled)):
        await quitter


def test_unwritable_store_still_returns_results_with_one_warning(
    proc: Processor, testdata: Path
) -> None:
    # Make the store's write area unusable (root ignores permissions, so use a file where
    # the folder should be): every put fails as on a full or read-only disk.
    tmp = proc.store.root / "tmp"
    tmp.rmdir()
    tmp.write_text("not a folder")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = proc.run_sync("upscale", testdata / "rocket.jpg")
        proc.run_sync("upscale", testdata / "chelsea.png")
    assert r.path.exists() and not r.cache_hit
    assert r.image.size == (1280, 854)
    assert sum("NOT cached" in str(w.message) for w in caught) == 1
    assert len(proc.store) == 0


def test_result_shows_itself_with_its_status(proc: Processor, testdata: Path) -> None:
    proc.run_sync("upscale", testdata / "chelsea.png")
    r = proc.run_sync("upscale", testdata / "chelsea.png")
    bundle = r._repr_mimebundle_()
    assert "cache hit" in bundle["text/html"] and "data:image/png;base64," in bundle["text/html"]
    assert "cache hit" in bundle["text/plain"] and "902x600" in bundle["text/plain"]
    assert isinstance(r.image, Image.Image)


def test_default_backend_is_local_without_fal_key(
    cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proc = Processor(cache_dir=cache_dir, environ={})
    assert proc.backend.name == "local"
    assert "FAL_KEY is not set" in capsys.readouterr().err


def test_endpoints_are_refused_for_the_local_backend(cache_dir: Path) -> None:
    with pytest.raises(OperationError, match="fal backend only"):
        Processor("local", cache_dir=cache_dir, endpoints={"upscale": "fal-ai/aura-sr"})


BAD_FILES = {
    "rocket_truncated.jpg": "truncated",
    "not_an_image.jpg": "not an image",
    "empty.png": "empty",
    "bomb_40000x40000.png": "megapixels",
}


@pytest.mark.parametrize("name", sorted(p.name for p in TESTDATA.glob("*") if p.suffix != ".md"))
def test_every_test_photo_gives_a_result_or_a_clear_error(
    proc: Processor, testdata: Path, name: str
) -> None:
    if name in BAD_FILES:
        with pytest.raises(ImageError, match=BAD_FILES[name]):
            proc.run_sync("face_detail", testdata / name)
        return
    r = proc.run_sync("face_detail", testdata / name)
    upright = proc.image(testdata / name).size
    assert r.image.size == upright
    assert proc.run_sync("face_detail", testdata / name).cache_hit
