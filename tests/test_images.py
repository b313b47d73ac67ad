"""ImageRef: identity, decoding, and the awkward files real users bring."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from conftest import CountingBackend
from nbimgprep import ImageError, ImageRef, ResultStore
from nbimgprep.images import FileStamp


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


# -- the bytes processed are the bytes hashed ------------------------------------------------


def solid_png(path: Path, colour: str) -> Path:
    Image.new("RGB", (16, 16), colour).save(path)
    return path


def sha256_of(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_changed_after_hashing_is_refused_not_decoded(tmp_path: Path) -> None:
    photo = solid_png(tmp_path / "photo.png", "red")
    ref = ImageRef(photo)
    hashed = ref.sha256
    solid_png(photo, "blue")
    with pytest.raises(ImageError, match="changed after its SHA-256 was taken") as info:
        ref.open()
    assert str(photo) in str(info.value)
    assert ref.sha256 == hashed  # the identity it gave out is never silently swapped
    fresh = ImageRef(photo)
    assert fresh.sha256 == sha256_of(photo)
    assert fresh.open().getpixel((0, 0)) == (0, 0, 255)


def test_bytes_read_first_are_the_ones_hashed_decoded_and_sent(tmp_path: Path) -> None:
    photo = solid_png(tmp_path / "photo.png", "red")
    red_hash = sha256_of(photo)
    ref = ImageRef(photo)
    ref.open()
    solid_png(photo, "blue")  # after the read: this ImageRef is the red image, throughout
    assert ref.sha256 == red_hash
    data, _ = ref.upload_bytes()
    assert hashlib_hex(data) == red_hash
    assert ref.open().getpixel((0, 0)) == (255, 0, 0)


def hashlib_hex(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


class RewritingMemo:
    """The store's hash memo, plus a user who saves a new version of the photo right after
    nbimgprep hashed it (before the miss is processed)."""

    def __init__(self, store: ResultStore, photo: Path, colour: str) -> None:
        self.store, self.photo, self.colour = store, photo, colour

    def get_hash(self, stamp: FileStamp) -> str | None:
        return self.store.get_hash(stamp)

    def put_hash(self, stamp: FileStamp, sha256: str) -> None:
        self.store.put_hash(stamp, sha256)
        solid_png(self.photo, self.colour)


def assert_every_entry_is_made_from_its_image(store: ResultStore, colours: dict[str, str]) -> None:
    """Each entry's result has the colour of the input whose hash it is stored under."""
    from PIL import ImageColor

    for entry in store.entries():
        with Image.open(entry.path) as result:
            got = result.convert("RGB").getpixel((0, 0))
        assert got == ImageColor.getrgb(colours[entry.image_hash]), entry


@pytest.mark.parametrize("kept", [True, False], ids=["bytes kept", "over the bound"])
async def test_a_file_changed_between_hashing_and_processing_stores_nothing_wrong(
    tmp_path: Path, counting_backend: CountingBackend, monkeypatch: pytest.MonkeyPatch, kept: bool
) -> None:
    from nbimgprep import Processor

    if not kept:  # a file past the bound: hashed streaming, read and re-hashed to be processed
        monkeypatch.setattr("nbimgprep.images.READ_ONCE_BYTES", 10)

    proc = Processor(counting_backend, cache_dir=tmp_path / "cache")
    photo = solid_png(tmp_path / "photo.png", "red")
    colours = {sha256_of(photo): "red"}
    ref = ImageRef(photo, memo=RewritingMemo(proc.store, photo, "blue"))
    with pytest.raises(ImageError, match="changed after its SHA-256 was taken"):
        await proc.run("upscale", ref)
    assert proc.store.entries() == []  # nothing stored under the red hash
    colours[sha256_of(photo)] = "blue"
    result = await proc.run("upscale", photo)  # run again: the file as it is now
    assert not result.cache_hit and result.image_hash == sha256_of(photo)
    assert_every_entry_is_made_from_its_image(proc.store, colours)


class RewritingBackend(CountingBackend):
    """A backend during whose call the user saves a new version of the input file."""

    def __init__(self, photo: Path, colour: str) -> None:
        super().__init__()
        self.photo, self.colour = photo, colour

    async def run(self, operation: Any, image: ImageRef, *args: Any, **kwargs: Any) -> Any:
        solid_png(self.photo, self.colour)
        return await super().run(operation, image, *args, **kwargs)


async def test_a_file_changed_during_the_backend_call_is_stored_as_it_was_hashed(
    tmp_path: Path,
) -> None:
    from nbimgprep import Processor

    photo = solid_png(tmp_path / "photo.png", "red")
    colours = {sha256_of(photo): "red"}
    proc = Processor(RewritingBackend(photo, "blue"), cache_dir=tmp_path / "cache")
    first = await proc.run("upscale", photo)
    assert first.image.convert("RGB").getpixel((0, 0)) == (255, 0, 0)
    colours[sha256_of(photo)] = "blue"
    second = await proc.run("upscale", photo)  # the blue file: a new image, a miss
    assert not second.cache_hit and second.image_hash != first.image_hash
    assert_every_entry_is_made_from_its_image(proc.store, colours)


class ReadCounter:
    """Counts how often one file is opened, through Python's ``open`` (which pathlib,
    Pillow and nbimgprep all read files with)."""

    def __init__(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        import builtins

        self.path, self.reads = path.resolve(), 0
        real_open = io.open

        def counting_open(file: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(file, (str, Path)) and Path(file).resolve() == self.path:
                self.reads += 1
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(io, "open", counting_open)
        monkeypatch.setattr(builtins, "open", counting_open)


async def test_a_miss_on_a_new_file_reads_it_once(
    tmp_path: Path, counting_backend: CountingBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbimgprep import Processor

    proc = Processor(counting_backend, cache_dir=tmp_path / "cache")
    photo = solid_png(tmp_path / "photo.png", "red")
    counter = ReadCounter(photo, monkeypatch)
    result = await proc.run("upscale", photo, scale=2)  # hashed, decoded, processed, stored
    assert not result.cache_hit and counting_backend.calls == 1
    assert counter.reads == 1
    # The bytes processed are the bytes hashed: the key's hash, the stored result's pixels.
    assert result.image_hash == sha256_of(photo)
    assert result.image.convert("RGB").getpixel((0, 0)) == (255, 0, 0)


async def test_a_file_past_the_bound_is_not_kept_in_memory_but_read_again(
    tmp_path: Path, counting_backend: CountingBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbimgprep import Processor

    proc = Processor(counting_backend, cache_dir=tmp_path / "cache")
    photo = solid_png(tmp_path / "photo.png", "red")
    monkeypatch.setattr("nbimgprep.images.READ_ONCE_BYTES", photo.stat().st_size - 1)
    counter = ReadCounter(photo, monkeypatch)
    result = await proc.run("upscale", photo, scale=2)
    assert counter.reads == 2  # hashed streaming, then read (and hashed again) to decode
    assert not result.cache_hit and result.image_hash == sha256_of(photo)


def test_only_a_call_about_to_process_keeps_the_bytes_it_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = solid_png(tmp_path / "photo.png", "red")
    counter = ReadCounter(photo, monkeypatch)
    hashed_only = ImageRef(photo)
    hashed_only.sha256  # a batch's lookup, the widget's input: nothing kept  # noqa: B018
    hashed_only.open()
    assert counter.reads == 2
    processing = ImageRef(photo)
    assert processing.sha256_for_processing() == hashed_only.sha256
    processing.open()
    assert counter.reads == 3


class MemoClock:
    """The hash memo's clock, set by the test: how long after a file was written it was
    hashed decides whether the memo trusts the hash (a file hashed within a tick of the file
    clock of being written might have changed unseen, and is hashed again)."""

    def __init__(self, written: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        import types

        st = written.stat()
        self.changed = max(st.st_mtime_ns, st.st_ctime_ns)
        self.now = self.changed
        monkeypatch.setattr(
            "nbimgprep.store.memo.time", types.SimpleNamespace(time_ns=lambda: self.now)
        )


async def test_a_rerun_right_after_a_batch_reads_no_input(
    tmp_path: Path, counting_backend: CountingBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbimgprep import Processor

    proc = Processor(counting_backend, cache_dir=tmp_path / "cache")
    photo = solid_png(tmp_path / "photo.png", "red")
    clock = MemoClock(photo, monkeypatch)
    # What run_many does: look every input up first (hashing it, here 1 ms after it was
    # written: too soon for the memo to trust), then process the misses (5 s later).
    clock.now = clock.changed + 1_000_000
    ref = proc.image(photo)
    assert proc.cached("upscale", ref) is None
    clock.now = clock.changed + 5_000_000_000
    assert not (await proc.run("upscale", ref)).cache_hit  # read, hashed again, processed
    counter = ReadCounter(photo, monkeypatch)
    rerun = await proc.run_many("upscale", [photo], progress=False)
    assert len(rerun.hits) == 1
    assert counter.reads == 0  # the memo trusts the hash taken when the file was processed
    solid_png(photo, "blue")  # ... and a file changed since is seen as it is now
    changed = await proc.run("upscale", photo)
    assert not changed.cache_hit and changed.image.getpixel((0, 0)) == (0, 0, 255)


async def test_a_hit_costs_a_stat_and_no_read(
    tmp_path: Path, counting_backend: CountingBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    from nbimgprep import Processor

    proc = Processor(counting_backend, cache_dir=tmp_path / "cache")
    photo = solid_png(tmp_path / "photo.png", "red")
    # A file hashed within a tick of the file clock of being written is hashed again (the
    # memo cannot be sure of it): this test is about files that have settled.
    monkeypatch.setattr("nbimgprep.store.memo.memo_settle_ns", lambda stamp: 0)
    await proc.run("upscale", photo)
    real_open = io.open

    def guarded_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        assert Path(str(file)).resolve() != photo.resolve(), "the input file was read"
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(io, "open", guarded_open)
    monkeypatch.setattr(builtins, "open", guarded_open)
    assert (await proc.run("upscale", photo)).cache_hit
    assert counting_backend.calls == 1


def test_a_crop_of_a_crop_and_a_copy_of_a_crop_keep_their_identity(testdata: Path) -> None:
    photo = ImageRef(testdata / "astronaut.png")
    inner = photo.crop((100, 50, 200, 150)).crop((10, 20, 30, 40))
    assert inner.size == (30, 40)
    assert inner.open().getpixel((0, 0)) == photo.open().getpixel((110, 70))
    copy = ImageRef(inner)
    assert (copy.sha256, copy.name, copy.size) == (inner.sha256, inner.name, (30, 40))
    assert copy.path is None and photo.path == testdata / "astronaut.png"
