"""The offline backend on real photos: what each operation gives, on every kind of input."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from nbimgprep.backends import Backend
from nbimgprep.backends.local import LocalBackend
from nbimgprep.errors import BackendError, ImageError
from nbimgprep.images import ImageRef
from nbimgprep.operations import OPERATIONS, get_operation

# The Haar box of the one face in astronaut.png, give or take a few pixels.
ASTRONAUT_FACE = (170, 70, 110, 120)


class Reports:
    """A progress reporter that keeps what it was told."""

    def __init__(self) -> None:
        self.kinds: list[str] = []
        self.logs: list[str] = []
        self.running = asyncio.Event()

    def __call__(self, kind: str, *, position: int | None = None, logs: Sequence[str] = ()) -> None:
        self.kinds.append(kind)
        self.logs.extend(logs)
        self.running.set()


async def run(
    source: Path | ImageRef, operation: str, reports: Reports | None = None, **params: Any
) -> Image.Image:
    """What a Processor does with the backend on a miss, minus the cache."""
    backend = LocalBackend()
    op = get_operation(operation)
    out = await backend.run(
        op,
        source if isinstance(source, ImageRef) else ImageRef(source),
        op.canonical_params(params),
        backend.endpoint_for(op),
        reports or Reports(),
    )
    assert out.content_type == "image/png"
    result = Image.open(io.BytesIO(out.data))
    assert result.format == "PNG"
    result.load()
    return result


def pixels(img: Image.Image) -> np.ndarray[Any, Any]:
    return np.asarray(img).astype(np.int16)


def test_is_a_backend_with_offline_endpoints() -> None:
    backend = LocalBackend()
    assert isinstance(backend, Backend)
    assert backend.name == "local"
    for op in OPERATIONS.values():
        endpoint = backend.endpoint_for(op)
        assert endpoint.id == f"local/{op.name}"
        assert endpoint.id != op.fal_endpoint


@pytest.mark.parametrize("scale", [2, 4])
async def test_upscale_is_exactly_scale_times_larger(testdata: Path, scale: int) -> None:
    reports = Reports()
    result = await run(testdata / "astronaut.png", "upscale", reports, scale=scale)
    assert result.size == (512 * scale, 512 * scale)
    assert result.mode == "RGB"
    assert reports.kinds[0] == "running"
    # Still the same picture: shrunk back, it is close to the original.
    back = result.resize((512, 512), Image.Resampling.BOX)
    original = Image.open(testdata / "astronaut.png").convert("RGB")
    assert np.abs(pixels(back) - pixels(original)).mean() < 4


async def test_background_removal_keeps_the_cup_and_drops_the_table(testdata: Path) -> None:
    result = await run(testdata / "coffee.png", "remove_background")
    assert result.size == (600, 400)
    assert result.mode == "RGBA"
    alpha = np.asarray(result.getchannel("A"))
    for y, x in [(5, 5), (5, 594), (394, 5), (394, 594)]:
        assert alpha[y, x] == 0, f"corner {(x, y)} should be transparent"
    assert (alpha[120:170, 240:340] == 255).all(), "the cup's centre should be opaque"
    # The colours are the photo's own; only alpha changed.
    original = Image.open(testdata / "coffee.png").convert("RGB")
    assert np.array_equal(
        np.asarray(result.convert("RGB"))[alpha == 255], np.asarray(original)[alpha == 255]
    )
    # Soft edges: some pixels are partly transparent.
    assert ((alpha > 0) & (alpha < 255)).any()


async def test_face_detail_changes_the_face_and_nothing_far_from_it(testdata: Path) -> None:
    reports = Reports()
    result = await run(testdata / "astronaut.png", "face_detail", reports)
    assert any("found 1 face" in line for line in reports.logs)
    assert result.size == (512, 512)
    assert result.mode == "RGB"
    before = pixels(Image.open(testdata / "astronaut.png").convert("RGB"))
    after = pixels(result)
    x, y, w, h = ASTRONAUT_FACE
    assert (before[y : y + h, x : x + w] != after[y : y + h, x : x + w]).any(axis=2).mean() > 0.5
    far = np.ones(before.shape[:2], bool)
    far[max(0, y - h) : y + 2 * h, max(0, x - w) : x + 2 * w] = False
    assert np.array_equal(before[far], after[far])


async def test_face_detail_without_a_face_returns_the_image_unchanged(testdata: Path) -> None:
    reports = Reports()
    result = await run(testdata / "coffee.png", "face_detail", reports)
    assert any("no face found" in line for line in reports.logs)
    original = Image.open(testdata / "coffee.png").convert("RGB")
    assert np.array_equal(np.asarray(result), np.asarray(original))


AWKWARD = {
    # file: (mode after upscale and face detail, whether a face is found upright)
    "astronaut_16bit.png": "L",
    "astronaut_cmyk.jpg": "RGB",
    "coffee_palette_transparent.png": "RGBA",
    "astronaut_exif_rot6.jpg": "RGB",
}


@pytest.mark.parametrize("name", sorted(AWKWARD))
async def test_awkward_inputs_go_through_every_operation(testdata: Path, name: str) -> None:
    ref = ImageRef(testdata / name)
    size = ref.size
    mode = AWKWARD[name]

    upscaled = await run(ref, "upscale", scale=2)
    assert (upscaled.size, upscaled.mode) == ((size[0] * 2, size[1] * 2), mode)

    cutout = await run(ref, "remove_background")
    assert (cutout.size, cutout.mode) == (size, "RGBA")

    reports = Reports()
    detailed = await run(ref, "face_detail", reports)
    assert (detailed.size, detailed.mode) == (size, mode)
    if name.startswith("astronaut"):
        # Haar cascades find upright faces only: the EXIF-rotated photo was turned upright.
        assert any("found 1 face" in line for line in reports.logs), reports.logs

    if mode == "RGBA":
        # Transparency in the input stays transparent.
        hole = np.asarray(ref.open().getchannel("A")) == 0
        assert hole.any()
        assert (np.asarray(cutout.getchannel("A"))[hole] == 0).all()
        assert np.array_equal(
            np.asarray(detailed.getchannel("A")), np.asarray(ref.open().getchannel("A"))
        )
        assert np.asarray(upscaled.getchannel("A")).min() == 0


async def test_without_opencv_the_error_says_what_to_install(
    testdata: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    for operation in ("remove_background", "face_detail"):
        with pytest.raises(BackendError, match=r'pip install "nbimgprep\[local\]"'):
            await run(testdata / "coffee.png", operation)
    # Upscaling needs only Pillow, so it still works.
    assert (await run(testdata / "coffee.png", "upscale")).size == (1200, 800)


async def test_the_event_loop_stays_free_and_cancelling_stops_the_call(testdata: Path) -> None:
    reports = Reports()
    task = asyncio.create_task(run(testdata / "coffee_24mp.jpg", "remove_background", reports))
    await reports.running.wait()  # the backend has started; the loop is still ours
    ticks = 0
    while ticks < 3:  # the loop keeps turning while the work runs in a thread
        await asyncio.sleep(0)
        ticks += 1
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("remove_background", {}),
        ("upscale", {"scale": 2}),
        ("upscale", {"scale": 4}),
        ("face_detail", {}),
    ],
)
async def test_every_result_has_the_size_the_operation_table_promises(
    testdata: Path, operation: str, params: dict[str, Any]
) -> None:
    op = get_operation(operation)
    result = await run(testdata / "chelsea.png", operation, **params)
    promised = op.output_size(ImageRef(testdata / "chelsea.png").size, op.canonical_params(params))
    assert result.size == promised


@pytest.mark.parametrize("size", [(4, 4), (1, 500), (500, 1)])
async def test_background_removal_says_an_image_is_too_small(size: tuple[int, int]) -> None:
    ref = ImageRef(Image.new("RGB", size, "white"), name="tiny.png")
    with pytest.raises(ImageError, match=r"tiny\.png: .* too small .* at least 8 px"):
        await run(ref, "remove_background")
