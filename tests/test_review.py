"""Reviewing a batch from Python: items, statuses and flags, decisions kept in the store,
redo and retry through the Processor, export, filters and pages."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from conftest import CountingBackend
from nbimgprep import (
    BackendError,
    ExportConflict,
    NbimgprepError,
    NotInCache,
    Processor,
    Review,
    SaveError,
)
from nbimgprep.backends import BackendOutput, ProgressReporter
from nbimgprep.images import ImageRef, encode_png
from nbimgprep.operations import Endpoint, Operation


def product_shot(path: Path, radius: int, colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    """A disc of ``radius`` on a pale ground: a big one is a subject, a tiny one is not."""
    img = Image.new("RGB", (200, 160), (240, 240, 240))
    ImageDraw.Draw(img).ellipse((100 - radius, 80 - radius, 100 + radius, 80 + radius), colour)
    img.save(path)
    return path


@pytest.fixture
def shots(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "shots"
    folder.mkdir()
    return [product_shot(folder / f"shot{i:02}.png", 30 + i, (20 * i, 90, 160)) for i in range(6)]


class SameSizeBackend(CountingBackend):
    """Hands back its input unchanged, whatever the operation promises."""

    async def run(
        self,
        operation: Operation,
        image: ImageRef,
        params: Mapping[str, Any],
        endpoint: Endpoint,
        report: ProgressReporter,
    ) -> BackendOutput:
        self.calls += 1
        return BackendOutput(encode_png(image.open()), "image/png")


def test_items_statuses_and_flags_on_a_local_batch(tmp_path: Path) -> None:
    ball = product_shot(tmp_path / "ball.png", 50)
    speck = product_shot(tmp_path / "speck.png", 4)  # background removal keeps nearly nothing
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    proc = Processor("local", cache_dir=tmp_path / "cache")
    proc.run_many_sync("remove_background", [ball], progress=False)
    batch = proc.run_many_sync("remove_background", [ball, speck, broken], progress=False)

    review = Review(batch)

    assert [item.index for item in review.items] == [0, 1, 2]
    assert [item.status for item in review.items] == ["hit", "fresh", "failed"]
    assert [item.source for item in review.items] == [ball, speck, broken]
    assert review.items[0].flags == ()
    assert review.items[1].flags == ("kept almost nothing",)
    assert review.items[2].result is None and "broken.png" in str(review.items[2].error)
    assert [item.decision for item in review.items] == [None, None, None]
    assert review.summary.startswith("3 items: 1 hits, 1 fresh, 1 failed")


def test_size_and_unchanged_flags(tmp_path: Path, shots: list[Path]) -> None:
    lazy = Processor(SameSizeBackend(), cache_dir=tmp_path / "lazy")
    upscaled = Review(lazy.run_many_sync("upscale", shots[:1], progress=False, scale=2))
    assert upscaled.items[0].flags == ("unexpected size",)

    honest = Processor(CountingBackend(), cache_dir=tmp_path / "honest")
    assert Review(honest.run_many_sync("upscale", shots[:1], scale=4)).items[0].flags == ()
    detailed = Review(honest.run_many_sync("face_detail", shots[:1], progress=False))
    assert detailed.items[0].flags == ("unchanged",)


def test_decisions_persist_across_a_new_processor_and_review(
    tmp_path: Path, shots: list[Path]
) -> None:
    cache = tmp_path / "cache"
    proc = Processor(CountingBackend(), cache_dir=cache)
    review = proc.run_many_sync("upscale", shots, progress=False).review()
    review.accept(0)
    review.reject(1)
    review.select(2)
    review.accept()
    review.clear()
    review.reject(3)
    review.accept(3)  # a new decision replaces the old one

    later = Processor(CountingBackend(), cache_dir=cache)  # a new kernel, say
    again = later.run_many_sync("upscale", shots, progress=False).review()

    assert [item.decision for item in again.items] == [
        "accepted", "rejected", None, "accepted", None, None
    ]  # fmt: skip
    assert again.accepted == [again.items[0].result, again.items[3].result]
    assert again.rejected == [again.items[1].result]
    assert [item.status for item in again.items] == ["hit"] * 6


def test_a_decision_never_changes_what_a_lookup_returns(tmp_path: Path, shots: list[Path]) -> None:
    proc = Processor(CountingBackend(), cache_dir=tmp_path / "cache")
    before = proc.run_sync("upscale", shots[0], scale=2)
    review = proc.run_many_sync("upscale", shots[:1], progress=False, scale=2).review()
    review.reject(0)
    after = proc.run_sync("upscale", shots[0], scale=2)
    assert after.cache_hit
    assert (after.key, after.path, after.width) == (before.key, before.path, before.width)
    assert after.path.read_bytes() == before.path.read_bytes()


def test_redo_makes_one_fresh_call_and_starts_undecided(tmp_path: Path, shots: list[Path]) -> None:
    backend = CountingBackend()
    proc = Processor(backend, cache_dir=tmp_path / "cache")
    review = proc.run_many_sync("upscale", shots, progress=False).review()
    review.reject(2)
    calls = backend.calls

    result = asyncio.run(review.redo(2))

    assert backend.calls == calls + 1
    assert not result.cache_hit
    assert review.items[2].result == result and review.items[2].status == "fresh"
    assert review.items[2].decision is None
    bigger = asyncio.run(review.redo(2, scale=4))
    assert (bigger.width, bigger.height) == (800, 640) and backend.calls == calls + 2


def test_redo_with_another_endpoint_is_keyed_apart(tmp_path: Path, shots: list[Path]) -> None:
    proc = Processor(CountingBackend(), cache_dir=tmp_path / "cache")
    review = proc.run_many_sync("upscale", shots[:1], progress=False).review()
    result = asyncio.run(review.redo(0, endpoint="test/another-upscaler"))
    assert result.endpoint == "test/another-upscaler"
    assert result.key != proc.key_for("upscale", shots[0])


def test_retry_failed_runs_only_the_failed_items(tmp_path: Path, shots: list[Path]) -> None:
    backend = CountingBackend()
    proc = Processor(backend, cache_dir=tmp_path / "cache")
    proc.run_many_sync("upscale", shots[:4], progress=False)
    backend.fail_with = BackendError("the service is down; try again later.")
    review = proc.run_many_sync("upscale", shots, progress=False).review()
    assert [item.status for item in review.items] == ["hit"] * 4 + ["failed"] * 2
    backend.fail_with = None
    calls = backend.calls

    done = asyncio.run(review.retry_failed())

    assert backend.calls == calls + 2 and len(done) == 2
    assert [item.status for item in review.items] == ["hit"] * 4 + ["fresh"] * 2
    assert asyncio.run(review.retry_failed()) == []


def test_export_names_results_after_their_inputs(tmp_path: Path, shots: list[Path]) -> None:
    proc = Processor(CountingBackend(), cache_dir=tmp_path / "cache")
    review = proc.run_many_sync("upscale", shots, progress=False).review()
    review.accept(1)
    review.accept(4)
    review.reject(0)

    out = tmp_path / "out" / "accepted"
    paths = review.export(out)

    assert paths == [out / "shot01.png", out / "shot04.png"]
    assert paths[0].read_bytes() == review.items[1].result.path.read_bytes()  # type: ignore[union-attr]
    assert review.export(tmp_path / "bad", which="rejected") == [tmp_path / "bad" / "shot00.png"]


def test_export_refuses_to_overwrite_and_writes_nothing(tmp_path: Path, shots: list[Path]) -> None:
    proc = Processor(CountingBackend(), cache_dir=tmp_path / "cache")
    review = proc.run_many_sync("upscale", shots, progress=False).review()
    review.accept(1)
    review.accept(4)
    out = tmp_path / "out"
    out.mkdir()
    (out / "shot04.png").write_bytes(b"mine")

    with pytest.raises(ExportConflict, match=r"shot04\.png") as raised:
        review.export(out)
    assert isinstance(raised.value, NbimgprepError)
    assert sorted(p.name for p in out.iterdir()) == ["shot04.png"]
    assert (out / "shot04.png").read_bytes() == b"mine"

    review.export(out, overwrite=True)
    assert (out / "shot04.png").read_bytes() == review.items[4].result.path.read_bytes()  # type: ignore[union-attr]


def test_export_to_a_place_it_cannot_use_says_so(tmp_path: Path, shots: list[Path]) -> None:
    proc = Processor(CountingBackend(), cache_dir=tmp_path / "cache")
    review = proc.run_many_sync("upscale", shots, progress=False).review()
    review.accept(1)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    with pytest.raises(SaveError, match="is a file, not a folder"):
        review.export(a_file)
    with pytest.raises(SaveError, match="Cannot create the folder"):
        review.export(a_file / "inside")
    (tmp_path / "out" / "shot01.png").mkdir(parents=True)  # a folder where the file would go
    with pytest.raises(ExportConflict, match="a folder"):
        review.export(tmp_path / "out", overwrite=True)
    review.accept(2)
    review.items[2].result.path.unlink()  # type: ignore[union-attr]
    with pytest.raises(NotInCache, match="no longer in the cache"):
        review.export(tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere").exists()


def test_filters_and_pages(tmp_path: Path) -> None:
    folder = tmp_path / "shots"
    folder.mkdir()
    good = [product_shot(folder / f"good{i:02}.png", 50) for i in range(5)]
    speck = product_shot(folder / "speck.png", 4)
    broken = folder / "broken.png"
    broken.write_bytes(b"not an image")
    proc = Processor("local", cache_dir=tmp_path / "cache")
    review = proc.run_many_sync("remove_background", [*good, speck, broken], progress=False).review(
        page_size=4
    )
    review.accept(0)
    review.reject(1)

    def shown(which: str) -> list[int]:
        review.filter = which  # type: ignore[assignment]
        return [item.index for item in review.shown]

    assert shown("all") == [0, 1, 2, 3, 4, 5, 6]
    assert shown("flagged") == [5]
    assert shown("accepted") == [0]
    assert shown("rejected") == [1]
    assert shown("failed") == [6]
    assert shown("undecided") == [2, 3, 4, 5]
    with pytest.raises(NbimgprepError, match="use one of all, flagged"):
        review.filter = "pretty"  # type: ignore[assignment]

    review.filter = "all"
    assert review.pages == 2 and [i.index for i in review.page_items] == [0, 1, 2, 3]
    review.page = 1
    assert [i.index for i in review.page_items] == [4, 5, 6]
    review.page = 9
    assert review.page == 1


def test_a_review_needs_the_processor_of_its_batch(tmp_path: Path, shots: list[Path]) -> None:
    from nbimgprep import Batch

    proc = Processor(CountingBackend(), cache_dir=tmp_path / "cache")
    batch = proc.run_many_sync("upscale", shots[:2], progress=False)
    bare = Batch(batch.operation, batch.items, batch.elapsed, batch.params)
    with pytest.raises(NbimgprepError, match="processor=proc"):
        Review(bare)
    assert len(Review(bare, processor=proc).items) == 2


def test_keys_move_the_selection_across_rows_and_pages(tmp_path: Path) -> None:
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(10):
        product_shot(folder / f"shot{i}.png", 50)
    proc = Processor(CountingBackend(), cache_dir=tmp_path / "cache")
    review = proc.run_many_sync("upscale", folder, progress=False).review(page_size=4)
    assert review.selected == 0

    review.press("ArrowLeft")  # already the first
    assert review.selected == 0
    review.press("ArrowDown", columns=2)
    assert review.selected == 2 and review.page == 0
    review.press("ArrowDown", columns=2)  # off the page's end: the next page
    assert review.selected == 4 and review.page == 1
    review.press("ArrowRight")
    review.press("PageDown")  # place 1 on page 1 -> place 1 on page 2 (items 8, 9)
    assert review.selected == 9 and review.page == 2
    review.press("PageDown")  # the last page: stays on it
    assert review.selected == 9 and review.page == 2
    review.press("ArrowUp", columns=3)
    assert review.selected == 6 and review.page == 1

    review.press("r")
    review.press("ArrowLeft")
    review.press("a")
    assert [i.index for i in review.items if i.decision] == [5, 6]
    review.filter = "rejected"  # the selection (5) is not shown: a key starts on the page
    review.press("ArrowRight")
    assert review.selected == 6
    with pytest.raises(NbimgprepError, match="the keys are ArrowLeft"):
        review.press("x")


def test_a_result_made_in_the_opened_image_prep_can_be_taken(
    tmp_path: Path, shots: list[Path]
) -> None:
    proc = Processor(CountingBackend(), cache_dir=tmp_path / "cache")
    review = proc.run_many_sync("upscale", shots, progress=False).review()
    with pytest.raises(NbimgprepError, match="No item is open"):
        review.take()
    review.reject(3)
    prep = review.open(3)
    with pytest.raises(NbimgprepError, match="no result yet"):
        review.take()

    prep.crop = (20, 20, 100, 80)  # the subject alone, then upscaled again
    prep.apply_crop()
    made = asyncio.run(prep.apply("upscale", scale=2))
    taken = review.take()

    item = review.items[3]
    assert taken == made and item.result == made and item.decision is None
    assert (made.width, made.height) == (200, 160)
    assert item.flags == ()  # its size is checked against the crop it was made from
    review.accept(3)
    [exported] = review.export(tmp_path / "out")
    assert exported.name == "shot03.png" and exported.read_bytes() == made.path.read_bytes()
