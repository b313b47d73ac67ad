"""ImageRef: identity, decoding, and the awkward files real users bring."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from nbimgprep import ImageError, ImageRef, ResultStore


def test_hash_is_sha256_of_file_bytes(testdata: Path) -> None:
    import hashlib

    path = testdata / "rocket.jpg"
    assert ImageRef(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_path_bytes_and_file_object_share_one_identity(testdata: Path) -> None:
    path = testdata / "chelsea.png"
    from_path = ImageRef(str(path)).sha256
    assert ImageRef(path.read_bytes()).sha256 == from_path
    with path.open("rb") as f:
        assert ImageRef(f).sha256 == from_path


def test_pil_image_source_opens_as_given() -> None:
    img = Image.new("RGB", (30, 20), "red")
    ref = ImageRef(img)
    assert ref.size == (30, 20)
    assert len(ref.sha256) == 64


def test_memo_makes_second_look_at_unchanged_file_a_stat(tmp_path: Path, testdata: Path) -> None:
    store = ResultStore(tmp_path / "cache")
    # A file unchanged for long: a memo answer is checkable, poison the memo and see it used.
    from nbimgprep.images import FileStamp

    settled = testdata / "astronaut.png"
    store.put_hash(FileStamp.of(settled), "f" * 64)
    assert ImageRef(settled, memo=store).sha256 == "f" * 64
    photo = tmp_path / "photo.png"
    photo.write_bytes(settled.read_bytes())
    first = ImageRef(photo, memo=store).sha256
    # A change to the file (new mtime/size) is never answered from the memo.
    photo.write_bytes((testdata / "chelsea.png").read_bytes())
    assert ImageRef(photo, memo=store).sha256 not in (first, "f" * 64)


def test_exif_rotated_photo_opens_upright(testdata: Path) -> None:
    upright = ImageRef(testdata / "astronaut.png").open()
    rotated = ImageRef(testdata / "astronaut_exif_rot6.jpg").open()
    assert rotated.size == upright.size
    # Compare a coarse thumbnail: JPEG noise is small, a 90-degree turn is not.
    a = upright.convert("L").resize((8, 8))
    b = rotated.convert("L").resize((8, 8))
    diff = sum(abs(x - y) for x, y in zip(a.tobytes(), b.tobytes(), strict=True)) / 64
    assert diff < 20


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("astronaut_cmyk.jpg", "RGB"),
        ("astronaut_16bit.png", "L"),
        ("coffee_palette_transparent.png", "RGBA"),
        ("rocket.jpg", "RGB"),
    ],
)
def test_awkward_modes_become_processable(testdata: Path, name: str, mode: str) -> None:
    img = ImageRef(testdata / name).open()
    assert img.mode == mode


def test_palette_transparency_is_kept(testdata: Path) -> None:
    img = ImageRef(testdata / "coffee_palette_transparent.png").open()
    assert img.getextrema()[3][0] == 0  # some pixel is fully transparent


def test_16bit_keeps_its_tones(testdata: Path) -> None:
    img = ImageRef(testdata / "astronaut_16bit.png").open()
    low, high = img.getextrema()
    assert high - low > 128  # not crushed to black or white


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("rocket_truncated.jpg", "truncated"),
        ("not_an_image.jpg", "not an image"),
        ("empty.png", "empty"),
        ("bomb_40000x40000.png", "megapixels"),
    ],
)
def test_bad_files_are_refused_naming_the_file(testdata: Path, name: str, says: str) -> None:
    with pytest.raises(ImageError) as info:
        ImageRef(testdata / name).open()
    assert name in str(info.value)
    assert says in str(info.value)


def test_missing_file_and_wrong_type_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        _ = ImageRef(tmp_path / "nope.jpg").sha256
    with pytest.raises(ImageError, match="Cannot use a int"):
        ImageRef(42)  # type: ignore[arg-type]
    with pytest.raises(ImageError, match="folder"):
        ImageRef(tmp_path)


def test_crop_has_its_own_stable_identity(testdata: Path) -> None:
    photo = ImageRef(testdata / "astronaut.png")
    a = photo.crop((100, 50, 200, 150))
    b = ImageRef(testdata / "astronaut.png").crop((100, 50, 200, 150))
    assert a.sha256 == b.sha256
    assert a.sha256 != photo.sha256
    assert photo.crop((100, 50, 200, 151)).sha256 != a.sha256
    assert a.size == (200, 150)
    assert a.open().getpixel((0, 0)) == photo.open().getpixel((100, 50))


def test_crop_is_in_upright_pixels(testdata: Path) -> None:
    rotated = ImageRef(testdata / "astronaut_exif_rot6.jpg")
    w, h = rotated.size
    crop = rotated.crop((0, 0, w, h // 2))
    assert crop.size == (w, h // 2)


@pytest.mark.parametrize(
    "box", [(0, 0, 0, 10), (0, 0, 10, -1), (-1, 0, 10, 10), (500, 500, 20, 20), (0, 0, 513, 1)]
)
def test_crop_outside_or_empty_is_refused(testdata: Path, box: tuple[int, int, int, int]) -> None:
    with pytest.raises(ImageError, match="crop box"):
        ImageRef(testdata / "astronaut.png").crop(box)


def test_upload_bytes_pass_plain_files_and_fix_awkward_ones(testdata: Path) -> None:
    data, ctype = ImageRef(testdata / "rocket.jpg").upload_bytes()
    assert ctype == "image/jpeg" and data == (testdata / "rocket.jpg").read_bytes()
    data, ctype = ImageRef(testdata / "astronaut_exif_rot6.jpg").upload_bytes()
    assert ctype == "image/png"
    assert Image.open(io.BytesIO(data)).size == (512, 512)
    data, ctype = ImageRef(testdata / "astronaut_cmyk.jpg").upload_bytes()
    assert ctype == "image/png"


def test_a_96_megapixel_result_is_accepted_and_101_is_not() -> None:
    from nbimgprep.images import decode_image

    big = Image.new("1", (12_000, 8_000))  # 96 MP: over Pillow's warning, under our cap
    out = io.BytesIO()
    big.save(out, format="PNG")
    assert decode_image(out.getvalue(), "big result").size == (12_000, 8_000)
    with pytest.raises(ImageError, match="megapixels"):
        decode_image(out.getvalue(), "big result", max_pixels=95_000_000)
