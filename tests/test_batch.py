"""Batches as a user runs them: order kept, errors in place, folders and globs, hits on the
second run, a bounded number of calls in flight, 429s that slow the batch without failing an
item, a budget of fresh calls, and a plan that calls nothing."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from conftest import CountingBackend
from nbimgprep import (
    BackendError,
    Batch,
    BudgetExceeded,
    ImageError,
    NbimgprepError,
    Plan,
    Processor,
    ProgressEvent,
    Result,
)
from nbimgprep.backends import BackendOutput, ProgressReporter
from nbimgprep.errors import RateLimited
from nbimgprep.images import ImageRef, encode_png
from nbimgprep.operations import Endpoint, Operation


class LimitedBackend:
    """A stand-in for an API with a concurrency limit: it counts calls and the most it ever
    had in flight, and refuses with :class:`RateLimited` (HTTP 429) any call over ``limit``."""

    name = "local"

    def __init__(self, limit: int | None = None, delay: float = 0.02) -> None:
        self.limit = limit
        self.delay = delay
        self.calls = 0
        self.refused = 0
        self.in_flight = 0
        self.peak = 0

    def endpoint_for(self, operation: Operation) -> Endpoint:
        return Endpoint(f"test/{operation.name}")

    async def run(
        self,
        operation: Operation,
        image: ImageRef,
        params: Mapping[str, Any],
        endpoint: Endpoint,
        report: ProgressReporter,
    ) -> BackendOutput:
        self.calls += 1
        self.in_flight += 1
        try:
            self.peak = max(self.peak, self.in_flight)
            if self.limit is not None and self.in_flight > self.limit:
                self.refused += 1
                raise RateLimited("fal.ai answered 429 (too many requests).", retry_after=0.01)
            await asyncio.sleep(self.delay)
            img = image.open()
            scale = int(params.get("scale", 1))
            return BackendOutput(encode_png(img.resize((img.width * scale, img.height * scale))))
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        pass


def make_images(folder: Path, n: int, suffix: str = ".png") -> list[Path]:
    """``n`` small images, each of its own width (10 + i px), so results show their input."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"img{i:03d}{suffix}"
        Image.new("RGB", (10 + i, 8), (i * 7 % 256, 90, 140)).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def backend() -> LimitedBackend:
    return LimitedBackend()


@pytest.fixture
def proc(cache_dir: Path, backend: LimitedBackend) -> Processor:
    return Processor(backend, cache_dir=cache_dir)


async def test_outcomes_come_in_input_order_with_errors_in_place(
    proc: Processor, tmp_path: Path, testdata: Path
) -> None:
    a, b = make_images(tmp_path / "in", 2)
    pil = Image.new("RGB", (30, 8), "red")
    sources = [a, tmp_path / "missing.jpg", pil, testdata / "not_an_image.jpg", b.read_bytes()]

    batch = await proc.run_many("upscale", sources, scale=2, progress=False)

    assert isinstance(batch, Batch) and len(batch) == 5
    assert [type(o).__name__ for o in batch] == [
        "Result",
        "ImageError",
        "Result",
        "ImageError",
        "Result",
    ]
    widths = [o.width for o in batch if isinstance(o, Result)]
    assert widths == [20, 60, 22]
    assert "missing.jpg" in str(batch[1]) and "not_an_image.jpg" in str(batch[3])
    assert batch.sources == sources
    assert [item.status for item in batch.items] == ["fresh", "failed", "fresh", "failed", "fresh"]
    assert len(batch.results) == 3 and len(batch.errors) == 2 and len(batch.fresh) == 3


async def test_a_backend_error_names_the_input(cache_dir: Path, tmp_path: Path) -> None:
    failing = CountingBackend()
    failing.fail_with = BackendError("the model crashed")
    proc = Processor(failing, cache_dir=cache_dir)
    (photo,) = make_images(tmp_path / "in", 1)

    batch = await proc.run_many("face_detail", [photo], progress=False)

    (error,) = batch.errors
    assert isinstance(error, NbimgprepError)
    assert str(error) == f"{photo}: the model crashed"


async def test_a_folder_is_its_images_sorted_and_a_glob_its_matches(
    proc: Processor, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    paths = make_images(folder, 3)
    (folder / "notes.txt").write_text("not an image")
    make_images(folder, 1, suffix=".jpg")  # img000.jpg

    in_folder = await proc.run_many("face_detail", folder, progress=False)
    pngs = await proc.run_many("face_detail", str(folder / "*.png"), progress=False)

    assert in_folder.sources == sorted([*paths, folder / "img000.jpg"])
    assert pngs.sources == paths
    assert len(pngs.hits) == 3  # the folder's run made them


async def test_an_empty_folder_or_pattern_is_a_clear_error(proc: Processor, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="holds no images"):
        await proc.run_many("face_detail", tmp_path / "empty", progress=False)
    with pytest.raises(ImageError, match="matches no files"):
        await proc.run_many("face_detail", str(tmp_path / "*.png"), progress=False)


def test_the_second_run_is_all_hits(
    proc: Processor, backend: LimitedBackend, tmp_path: Path
) -> None:
    paths = make_images(tmp_path / "in", 6)

    first = proc.run_many_sync("upscale", paths, scale=2, progress=False)
    second = proc.run_many_sync("upscale", paths, scale=2, progress=False)

    assert (len(first.fresh), len(second.hits), backend.calls) == (6, 6, 6)
    stats = proc.store.stats()
    assert (stats.hits, stats.misses) == (6, 6)  # each miss counted once, each hit once
    assert [r.path for r in second.results] == [r.path for r in first.results]
    assert "6 images" in second.summary and "6 hits, 0 fresh, 0 failed" in second.summary
    assert str(second).startswith("upscale scale=2: 6 images")


async def test_on_error_raise_raises_the_first_error_and_cancels_the_rest(
    cache_dir: Path, tmp_path: Path
) -> None:
    held = CountingBackend()
    held.gate = asyncio.Event()  # never set: the good items would wait forever
    proc = Processor(held, cache_dir=cache_dir)
    good = make_images(tmp_path / "in", 3)

    with pytest.raises(ImageError, match=r"missing\.png"):
        await proc.run_many(
            "face_detail", [*good, tmp_path / "missing.png"], on_error="raise", progress=False
        )

    assert held.calls == held.cancelled  # every call that started was cancelled


async def test_calls_in_flight_never_exceed_the_bound(
    proc: Processor, backend: LimitedBackend, tmp_path: Path
) -> None:
    paths = make_images(tmp_path / "in", 12)

    batch = await proc.run_many("face_detail", paths, concurrency=3, progress=False)

    assert len(batch.fresh) == 12
    assert backend.peak == 3


async def test_a_429_storm_slows_the_batch_and_fails_no_item(
    cache_dir: Path, tmp_path: Path
) -> None:
    api = LimitedBackend(limit=2)
    proc = Processor(api, cache_dir=cache_dir)
    paths = make_images(tmp_path / "in", 40)

    batch = await proc.run_many("face_detail", paths, concurrency=12, progress=False)

    assert batch.errors == [] and len(batch.fresh) == 40
    assert batch.rate_limited == api.refused > 0
    # Slowing down, not hammering: with 12 in flight against a limit of 2, a batch that kept
    # its pace would be refused ten times a round; this one probes the limit now and then.
    assert api.refused < len(paths)
    assert "retried" in batch.summary


async def test_max_fresh_makes_exactly_that_many_calls(
    proc: Processor, backend: LimitedBackend, tmp_path: Path
) -> None:
    paths = make_images(tmp_path / "in", 8)
    await proc.run_many("face_detail", paths[5:], progress=False)  # three hits to come
    backend.calls = 0

    batch = await proc.run_many("face_detail", paths, max_fresh=2, progress=False)

    assert backend.calls == 2
    assert [item.status for item in batch.items] == ["fresh"] * 2 + ["failed"] * 3 + ["hit"] * 3
    assert all(isinstance(e, BudgetExceeded) for e in batch.errors)
    assert str(paths[2]) in str(batch.errors[0]) and "max_fresh=2" in str(batch.errors[0])
    assert "3 over the max_fresh budget" in batch.summary


async def test_plan_counts_hits_and_fresh_without_calling_anything(
    proc: Processor, backend: LimitedBackend, tmp_path: Path
) -> None:
    paths = make_images(tmp_path / "in", 5)  # 10..14 px wide, 8 high
    proc.run_many_sync("upscale", paths[:2], scale=2, progress=False)
    calls, stats = backend.calls, proc.store.stats()

    # A plain method: fine inside this running event loop.
    plan = proc.plan("upscale", [*paths, tmp_path / "missing.png"], scale=2)

    assert plan == Plan(
        hits=2, fresh=3, fresh_megapixels=sum((w * 2) * 16 for w in (12, 13, 14)) / 1e6, failed=1
    )
    assert backend.calls == calls
    assert (proc.store.stats().hits, proc.store.stats().misses) == (stats.hits, stats.misses)
    assert "<table>" in plan._repr_html_() and "3 fresh calls" in str(plan)


def test_progress_bar_counts_hits_and_fresh_apart(
    proc: Processor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = make_images(tmp_path / "in", 3)
    proc.run_many_sync("face_detail", paths[:1], progress=False)
    assert capsys.readouterr().err == ""
    events: list[ProgressEvent] = []

    proc.run_many_sync("face_detail", paths, on_progress=events.append)

    bar = capsys.readouterr().err
    assert "hit=1" in bar and "fresh=2" in bar and "failed=0" in bar and "3/3" in bar
    assert sorted(e.kind for e in events if e.kind in ("hit", "done")) == ["done", "done", "hit"]


async def test_shown_in_a_notebook_a_batch_is_a_grid_of_badged_thumbnails(
    proc: Processor, tmp_path: Path
) -> None:
    paths = make_images(tmp_path / "in", 50)
    batch = await proc.run_many("face_detail", [*paths, tmp_path / "gone.png"], progress=False)

    page = batch._repr_html_()

    assert page.count("<img") == 48 and "and 3 more" in page
    assert "fresh</span>" in page and batch.summary in page
    text = batch._repr_mimebundle_()["text/plain"]
    assert text.splitlines()[0] == batch.summary and "gone.png" in text
    first_failed = await proc.run_many("face_detail", [tmp_path / "gone.png"], progress=False)
    assert "failed</span>" in first_failed._repr_html_()


class _BlockingFile(io.BytesIO):
    """A file object whose read waits until the event loop has run something else."""

    def __init__(self, data: bytes, loop_ran: threading.Event) -> None:
        super().__init__(data)
        self.loop_ran = loop_ran
        self.loop_was_free = False

    def read(self, size: int | None = -1) -> bytes:
        self.loop_was_free = self.loop_ran.wait(timeout=5)
        return super().read(size)


async def test_reading_and_hashing_an_input_never_block_the_event_loop(proc: Processor) -> None:
    loop_ran = threading.Event()
    source = _BlockingFile(encode_png(Image.new("RGB", (12, 12), "blue")), loop_ran)

    task = asyncio.create_task(proc.run_many("face_detail", [source], progress=False))
    for _ in range(5):
        await asyncio.sleep(0)  # the loop is free to do other work while the input is read
    loop_ran.set()
    batch = await task

    assert source.loop_was_free and len(batch.fresh) == 1
