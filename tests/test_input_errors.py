"""Every mistake a user can make with an input is an NbimgprepError naming it, never a raw one.

Property tests (hypothesis) throw the arguments nobody thought of at the public API: sources
of every type, crop boxes of every shape, PIL images of every mode and size, damaged files,
and parameters of every type; beside them, examples of the inputs that must keep their picture.
"""

from __future__ import annotations

import asyncio
import io
import math
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import TESTDATA, CountingBackend
from nbimgprep import ImageError, ImageRef, NbimgprepError, OperationError, Processor
from nbimgprep.backends.local import LocalBackend
from nbimgprep.images import MAX_PIXELS
from nbimgprep.operations import OPERATIONS, get_operation

PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
PIL_MODES = sorted(Image.MODES)
PROCESSABLE = {"RGB", "RGBA", "L", "LA"}


def assert_clear(exc: NbimgprepError, *names: str) -> None:
    """A message a user can act on: it names the input, and carries no raw library text."""
    text = str(exc)
    assert text and all(name in text for name in names), text
    for raw in ("Traceback", "OpenCV", "Assertion", "error: (-"):
        assert raw not in text, text


# -- sources -----------------------------------------------------------------------------------

odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(),
    st.lists(st.integers(), max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.binary(max_size=64),
    st.text(alphabet="abcxyz.-_ \0~", max_size=12),
    st.just(io.StringIO("not bytes")),
    st.just(io.BytesIO(b"")),
    st.just(object()),
)


@PROPERTY
@given(source=odd_values)
def test_any_source_is_an_image_or_an_image_error(source: Any) -> None:
    try:
        ref = ImageRef(source)
        assert len(ref.sha256) == 64
        img = ref.open()
    except ImageError as exc:
        assert_clear(exc)
    else:
        assert img.mode in PROCESSABLE


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda tmp: None, "Cannot use a NoneType"),
        (lambda tmp: 42, "Cannot use a int"),
        (lambda tmp: str(tmp), "is a folder"),
        (lambda tmp: tmp / "missing.jpg", "no such file"),
        (lambda tmp: _write(tmp / "notes.txt", b"shopping list\n"), "not an image"),
        (lambda tmp: _write(tmp / "empty.png", b""), "empty"),
        (lambda tmp: io.StringIO("a text stream"), "text file object"),
    ],
)
def test_wrong_sources_through_the_engine_are_image_errors(
    tmp_path: Path, make: Any, says: str
) -> None:
    proc = Processor(CountingBackend(), cache_dir=tmp_path / "cache")
    source = make(tmp_path)
    with pytest.raises(ImageError, match=says) as info:
        proc.run_sync("upscale", source)
    assert_clear(info.value)
    assert proc.backend.calls == 0  # type: ignore[attr-defined]
    proc.close()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _encoded(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.open(TESTDATA / "chelsea.png").convert("RGB").resize((64, 48)).save(out, format=fmt)
    return out.getvalue()


ENCODED = {fmt: _encoded(fmt) for fmt in ("PNG", "JPEG", "WEBP", "GIF", "TIFF", "BMP")}


@PROPERTY
@given(
    fmt=st.sampled_from(sorted(ENCODED)),
    cut=st.integers(min_value=1, max_value=4000),
    flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=4),
)
def test_damaged_files_are_images_or_image_errors(
    fmt: str, cut: int, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(ENCODED[fmt][:cut])
    for at, value in flips:
        if at < len(data):
            data[at] = value
    try:
        img = ImageRef(bytes(data)).open()
    except ImageError as exc:
        assert_clear(exc, "image from memory")
    else:
        assert img.mode in PROCESSABLE and img.width > 0 and img.height > 0


# -- PIL images of every mode --------------------------------------------------------------------


@PROPERTY
@given(
    mode=st.sampled_from(PIL_MODES),
    size=st.tuples(st.integers(1, 24), st.integers(1, 24)),
    seed=st.integers(0, 2**16),
)
def test_a_pil_image_of_any_mode_and_size_becomes_processable(
    mode: str, size: tuple[int, int], seed: int
) -> None:
    noise = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 4), dtype=np.uint8)
    source = (
        Image.fromarray(noise, "RGBA").convert("RGB").convert(mode)
        if mode != "I;16"
        else (Image.fromarray(noise[:, :, 0].astype(np.uint16) * 257))
    )
    ref = ImageRef(source)
    img = ref.open()
    assert img.mode in PROCESSABLE and img.size == size
    assert len(ref.sha256) == 64


def _gradient(mode: str, top: float) -> Image.Image:
    """A left-to-right ramp from 0 to ``top`` in ``mode``."""
    ramp = np.tile(np.linspace(0, top, 32), (8, 1))
    dtype = {"F": np.float32, "I": np.int32, "I;16": np.uint16}[mode]
    image = Image.fromarray(ramp.astype(dtype))
    assert image.mode == mode
    return image


@pytest.mark.parametrize(
    ("mode", "top"),
    [("F", 1.0), ("F", 255.0), ("I", 255), ("I", 65535), ("I;16", 255), ("I;16", 65535)],
)
def test_integer_and_float_images_keep_their_picture(mode: str, top: float) -> None:
    img = ImageRef(_gradient(mode, top)).open()
    assert img.mode == "L"
    row = [img.getpixel((x, 0)) for x in range(32)]
    assert row[0] == 0 and row[-1] >= 250, row  # black to white, not all black
    assert row == sorted(row)


def test_float_images_with_nan_say_so() -> None:
    ramp = _gradient("F", 1.0)
    ramp.putpixel((3, 3), math.nan)
    with pytest.raises(ImageError, match="NaN"):
        ImageRef(ramp).open()


@pytest.mark.parametrize(
    ("image", "mode"),
    [
        (Image.new("LA", (4, 4), (90, 0)), "LA"),
        (Image.new("La", (4, 4), (45, 128)), "LA"),
        (Image.new("1", (4, 4), 1), "L"),
        (Image.new("CMYK", (4, 4), (0, 255, 255, 0)), "RGB"),
        (Image.new("YCbCr", (4, 4), (76, 85, 255)), "RGB"),
        (Image.new("RGBa", (4, 4), (64, 0, 0, 128)), "RGBA"),
    ],
)
def test_other_modes_keep_colour_and_transparency(image: Image.Image, mode: str) -> None:
    img = ImageRef(image).open()
    assert img.mode == mode
    if mode == "RGB":  # the red of CMYK (0, 255, 255, 0) and YCbCr (76, 85, 255)
        r, g, b = img.getpixel((0, 0))  # type: ignore[misc]
        assert r > 200 and g < 60 and b < 60
    if mode.endswith("A"):
        assert img.getchannel("A").getextrema()[0] < 255  # transparency kept


def test_palette_transparency_from_a_pil_image_is_kept() -> None:
    img = Image.new("P", (4, 4), 0)
    img.putpalette([255, 0, 0, 0, 0, 255])
    img.putpixel((1, 1), 1)
    img.info["transparency"] = 0
    opened = ImageRef(img).open()
    assert opened.mode == "RGBA"
    assert opened.getpixel((0, 0))[3] == 0 and opened.getpixel((1, 1)) == (0, 0, 255, 255)  # type: ignore[index]


def test_pil_images_with_no_pixels_or_too_many_are_refused() -> None:
    with pytest.raises(ImageError, match="no pixels"):
        ImageRef(Image.new("RGB", (0, 5)))
    with pytest.raises(ImageError, match="megapixels"):
        ImageRef(Image.new("1", (20_000, 5_001)))


# -- crop boxes -----------------------------------------------------------------------------------

box_values = st.one_of(
    st.integers(-50, 80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=2),
)
boxes = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=5),
    st.lists(box_values, max_size=6),
    st.tuples(box_values, box_values, box_values, box_values),
    st.tuples(*[st.integers(-5, 70)] * 4),
)


@PROPERTY
@given(box=boxes)
def test_any_crop_box_is_a_crop_or_an_image_error(box: Any) -> None:
    photo = ImageRef(Image.new("RGB", (64, 48), "teal"))
    try:
        crop = photo.crop(box)
    except ImageError as exc:
        assert_clear(exc, "crop box")
    else:
        x, y, w, h = (int(v) for v in box)
        assert crop.size == (w, h) and x >= 0 and x + w <= 64 and y >= 0 and y + h <= 48
        assert crop.sha256 != photo.sha256


# -- parameters -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_proc() -> Any:
    with tempfile.TemporaryDirectory() as root:
        proc = Processor(CountingBackend(), cache_dir=Path(root) / "cache")
        yield proc
        proc.close()


SMALL = Image.new("RGB", (6, 4), "orange")


@PROPERTY
@given(
    scale=st.one_of(
        st.sampled_from([2, 4, 3, "2", None, True, False, 2.0, 2.5, math.nan, [2], np.int64(4)]),
        st.integers(),
        st.floats(allow_nan=True),
        st.text(max_size=3),
    )
)
def test_any_scale_is_a_result_or_an_operation_error(small_proc: Processor, scale: Any) -> None:
    try:
        result = small_proc.run_sync("upscale", SMALL, scale=scale)
    except OperationError as exc:
        assert_clear(exc, "scale")
    else:
        assert scale in (2, 4) and not isinstance(scale, bool)
        assert (result.width, result.height) == (6 * int(scale), 4 * int(scale))


@PROPERTY
@given(operation=st.one_of(st.text(max_size=20), st.none(), st.integers(), st.lists(st.text())))
def test_any_operation_name_is_known_or_an_operation_error(operation: Any) -> None:
    try:
        op = get_operation(operation)
    except OperationError as exc:
        assert_clear(exc, "remove_background", "upscale", "face_detail")
    else:
        assert op is OPERATIONS[operation]


# -- degenerate sizes on every operation of the local backend ------------------------------------


async def _local(image: Image.Image, operation: str, **params: Any) -> Image.Image:
    backend = LocalBackend()
    op = get_operation(operation)
    out = await backend.run(
        op,
        ImageRef(image, name="tiny.png"),
        op.canonical_params(params),
        backend.endpoint_for(op),
        lambda *args, **kwargs: None,
    )
    return Image.open(io.BytesIO(out.data))


@pytest.mark.parametrize("size", [(1, 1), (4, 4), (1, 500), (500, 1), (3000, 2), (9, 9)])
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA"])
@pytest.mark.parametrize(
    ("operation", "params"),
    [("upscale", {"scale": 4}), ("remove_background", {}), ("face_detail", {})],
)
def test_degenerate_sizes_give_a_result_or_a_clear_error(
    size: tuple[int, int], mode: str, operation: str, params: dict[str, Any]
) -> None:
    image = Image.effect_noise(size, 40).convert(mode)
    op = get_operation(operation)
    try:
        result = asyncio.run(_local(image, operation, **params))
    except NbimgprepError as exc:
        assert_clear(exc, "tiny.png")
    else:
        assert result.size == op.output_size(size, op.canonical_params(params))


# -- Pillow's decompression-bomb warning stays inside our own cap --------------------------------


@pytest.fixture(scope="module")
def big_png() -> bytes:
    """96 megapixels: over Pillow's 89 MP warning, under nbimgprep's 100 MP cap."""
    out = io.BytesIO()
    Image.new("1", (12_000, 8_000)).save(out, format="PNG")
    assert MAX_PIXELS >= 12_000 * 8_000
    return out.getvalue()


class ConstantBackend(CountingBackend):
    """Answers every call with the same bytes."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.data = data

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        from nbimgprep.backends import BackendOutput

        self.calls += 1
        return BackendOutput(self.data, "image/png")


def test_no_bomb_warning_for_images_and_results_inside_our_cap(
    tmp_path: Path, big_png: bytes
) -> None:
    source = _write(tmp_path / "big.png", big_png)
    proc = Processor(ConstantBackend(big_png), cache_dir=tmp_path / "cache")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        ref = ImageRef(source)
        assert ref.size == (12_000, 8_000)
        assert ref.crop((0, 0, 11_999, 8_000)).size == (11_999, 8_000)
        assert ref.upload_bytes()[1] == "image/png"
        result = proc.run_sync("face_detail", ref)
        assert result.image.size == (12_000, 8_000)
    proc.close()


def test_no_bomb_warning_when_importing_a_large_legacy_result(
    tmp_path: Path, big_png: bytes
) -> None:
    import json

    from nbimgprep import ResultStore

    _write(tmp_path / "big.png", big_png)
    legacy = tmp_path / "image-processing-cache.json"
    legacy.write_text(json.dumps({"ab" * 32: {"upscaled": "big.png", "timestamp": 1}}))
    store = ResultStore(tmp_path / "cache")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        outcome = store.import_legacy_json(legacy)
    assert outcome.imported == 1
