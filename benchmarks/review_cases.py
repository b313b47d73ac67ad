"""The Review gallery at scale: building a Review of 10,000 results (no widget yet), and what a
page of 48 tiles hands the browser, for opaque photos and for cut-outs with alpha, first time
and paging back.

The bytes are counted as the browser would receive them: every widget's comm is a recorder
(``comm.create_comm`` replaced while the grid is made and paged), and the payload is the sum
of the binary buffers of its messages (the thumbnails); the JSON state is counted apart.
Results come from the local backend (Pillow's upscale, OpenCV's GrabCut cut-out) on real
photos from ../shared/testdata.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import comm
from common import TESTDATA, Row, Sizes, median_seconds, ms, small_png
from PIL import Image, ImageOps

from nbimgprep import Batch, Processor, Review

#: Real photos with a clear subject (the cut-outs must find one in each).
PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "coffee_24mp.jpg")
#: Accepted and rejected shares of the 10,000, so the two tag queries return something.
ACCEPT_EVERY, REJECT_EVERY = 10, 25


@dataclass
class Payload:
    """What the widget comms sent: thumbnail (buffer) bytes and JSON state bytes."""

    buffers: int = 0
    state: int = 0
    _ids: Iterator[int] = field(default_factory=count)

    def record(self, data: Any, buffers: Any) -> None:
        self.buffers += sum(len(memoryview(b).cast("B")) for b in buffers or ())
        self.state += len(json.dumps(data, default=str))


@dataclass
class _RecordingComm:
    payload: Payload
    comm_id: str
    kernel: str = "a kernel"

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.payload.record(data, buffers)

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_msg(self, callback: Any) -> None:
        pass

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


@contextmanager
def browser() -> Iterator[Payload]:
    """Widgets made inside send to a recorder instead of a kernel's frontend."""
    payload = Payload()
    saved = comm.create_comm

    def create_comm(*args: Any, **kwargs: Any) -> _RecordingComm:
        payload.record(kwargs.get("data"), kwargs.get("buffers"))
        return _RecordingComm(payload, kwargs.get("comm_id") or f"comm-{next(payload._ids)}")

    comm.create_comm = create_comm
    try:
        yield payload
    finally:
        comm.create_comm = saved


def mb(n: int) -> str:
    return f"{n / 1e6:,.2f} MB"


# -- building a Review ----------------------------------------------------------------------


def review_build(tmp: Path, sizes: Sizes) -> list[Row]:
    """``Review(batch)`` over N results, some accepted or rejected, against the all-hit
    ``run_many_sync`` that gave the batch and against one tag query."""
    n = sizes.review_items
    folder = tmp / "in"
    folder.mkdir()
    paths = []
    for i in range(n):
        path = folder / f"photo{i:05d}.png"
        path.write_bytes(small_png(i))
        paths.append(path)
    proc = Processor(backend="local", cache_dir=tmp / "cache")
    first = proc.run_many_sync("upscale", paths, progress=False)
    for i, item in enumerate(first.items):
        assert item.result is not None, item.error
        if i % ACCEPT_EVERY == 0:
            proc.tag(item.result, "accepted")
        elif i % REJECT_EVERY == 0:
            proc.tag(item.result, "rejected")
    batch = proc.run_many_sync("upscale", paths, progress=False)
    assert len(batch.hits) == n, batch
    repeat = 3 if sizes.smoke else 7
    rerun = median_seconds(lambda: proc.run_many_sync("upscale", paths, progress=False), 3)
    build = median_seconds(lambda: Review(batch), repeat)
    query = median_seconds(lambda: proc.tagged("accepted"), repeat)
    review = Review(batch)
    assert review.counts["accepted"] == len(range(0, n, ACCEPT_EVERY)), review.summary
    proc.close()
    what = (
        f"building a `Review` of {n:,} results ({review.counts['accepted']:,} accepted, "
        f"{review.counts['rejected']:,} rejected), before any widget"
    )
    return [
        Row(
            f"{what}: vs the all-hit `run_many_sync` that gave the batch",
            ms(build),
            ms(rerun),
            build / rerun,
            "well under 1 s (<= 0.25 s)",
            build <= 0.25,
            why="Building reads no image: it makes one item per result and runs two tag "
            "queries (accepted, rejected), which take most of the time (the next row); a "
            "store query for the tagged keys alone, without building each entry, would cut "
            "them.",
        ),
        Row(
            f'the same build vs one `proc.tagged("accepted")` query '
            f"({review.counts['accepted']:,} keys; the build makes two)",
            ms(build),
            ms(query),
            build / query,
        ),
    ]


# -- what a page sends ----------------------------------------------------------------------


def photo_variants(folder: Path, n: int, side: int) -> list[Path]:
    """``n`` distinct real photos (each a slightly different crop, every other one mirrored,
    of the five in PHOTOS), at most ``side`` on the long side."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = []
    for name in PHOTOS:
        with Image.open(TESTDATA / name) as img:
            img.draft("RGB", (side, side))
            photo = img.convert("RGB")
        photo.thumbnail((side, side))
        sources.append(photo)
    paths = []
    for i in range(n):
        photo, k = sources[i % len(sources)], i // len(sources)
        w, h = photo.size
        cut = max(1, min(w, h) // 100)  # crops differ by about 1% a step
        variant = photo.crop((k * cut, (k % 3) * cut, w - (k % 4) * cut, h - (k % 5) * cut))
        if k % 2:
            variant = ImageOps.mirror(variant)
        path = folder / f"{Path(PHOTOS[i % len(sources)]).stem}-{k:02d}.png"
        variant.save(path)
        paths.append(path)
    return paths


def _result_bytes(batch: Batch, n: int) -> int:
    """The size of the first ``n`` result files (the first page's)."""
    return sum(item.result.path.stat().st_size for item in batch.items[:n] if item.result)


def review_pages(tmp: Path, sizes: Sizes) -> list[Row]:
    """The thumbnail bytes of a page of 48 tiles against the result files they stand for, for
    upscaled photos (opaque: JPEG thumbnails) and cut-outs (alpha: PNG thumbnails); then
    the bytes sent again when paging back to the first page."""
    page = sizes.review_page
    # The upscales fill a page and a quarter, so that the grid can page forward and back.
    photos = photo_variants(tmp / "photos", page + page // 4, sizes.review_photo_side)
    proc = Processor(backend="local", cache_dir=tmp / "cache")
    rows = []
    for operation, kind, inputs in (
        ("upscale", "opaque photos (`upscale` 2x)", photos),
        ("remove_background", "cut-outs with alpha (`remove_background`)", photos[:page]),
    ):
        batch = proc.run_many_sync(operation, inputs, progress=False)
        assert not batch.errors, batch
        first = batch.items[0].result
        assert first is not None
        with Image.open(first.path) as img:
            mode, shape = img.mode, f"{img.width}x{img.height}"
        with browser() as sent:
            review = Review(batch, page_size=page)
            grid = review.grid  # made on first use, showing page 1
            page_one = sent.buffers
            assert page_one == grid.bytes_sent, (page_one, grid.bytes_sent)
            if review.pages > 1:
                review.page = 1
                assert 0 < sent.buffers - page_one < page_one  # page 2's thumbnails
                before = sent.buffers, sent.state
                review.page = 0
                again, state_again = sent.buffers - before[0], sent.state - before[1]
        files = _result_bytes(batch, page)
        rows.append(
            Row(
                f"a page of {page} tiles, {kind}, local backend on real photos "
                f"({mode} results such as {shape}): thumbnail bytes sent vs the page's "
                "result files",
                mb(page_one),
                mb(files),
                page_one / files,
                "about 2 MB at most",
                page_one <= 2_000_000,
                why="A tile is a thumbnail of 128 px on its long side, JPEG where the "
                "result is opaque and PNG where it has alpha (so the cut-out stays one "
                "over the checkerboard); a lossy format with alpha (WebP) would shrink it.",
            )
        )
        if review.pages > 1:
            rows.append(
                Row(
                    f"paging back to page 1 ({kind}, after page 2): thumbnail bytes sent "
                    "again vs page 1 the first time",
                    f"{again:,} bytes (+{state_again / 1000:,.1f} KB of widget state)",
                    mb(page_one),
                    again / page_one,
                    "0 bytes",
                    again == 0,
                )
            )
    proc.close()
    return rows
