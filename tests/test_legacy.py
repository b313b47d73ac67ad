"""The original app's cache file: what export states, what import believes, hostile files.

The format ``{image_hash: {bgRemoved, upscaled, faceDetailed, timestamp}}`` cannot say which
endpoint or parameters made a result, so export writes only the default fal.ai call's
results and import gives every entry that call's key. An imported file may be hostile:
its paths stay inside ``root``, its results are decoded in full, its values are checked.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from fakefal import FakeFal, fake_fal  # noqa: F401  (fake_fal is a fixture)
from nbimgprep import Processor, ResultStore, StoreError
from nbimgprep.commands import export, import_legacy
from nbimgprep.images import encode_png
from nbimgprep.operations import OPERATIONS, Endpoint, cache_key
from nbimgprep.store import ResultMeta

KEY = "fake-key-id:fake-key-secret"
NOW_MS = 1_700_000_000_000
H1, H2 = "a1" * 32, "b2" * 32


def png(size: tuple[int, int] = (8, 6), mode: str = "RGBA", seed: int = 0) -> bytes:
    color = (seed % 256, 90, 160, 200)[: len(mode)]
    return encode_png(Image.new(mode, size, color))


def jpeg(size: tuple[int, int] = (8, 6)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (40, 80, 120)).save(out, "JPEG")
    return out.getvalue()


def truncated_png() -> bytes:
    """A PNG whose header (and so its size) reads fine, cut off in the middle of its pixels."""
    noise = Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3))
    whole = encode_png(noise)
    return whole[: len(whole) * 3 // 5]


def write_legacy(path: Path, document: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def default_key(image_hash: str, operation: str) -> str:
    op = OPERATIONS[operation]
    return cache_key(image_hash, operation, Endpoint(op.fal_endpoint), op.canonical_params())


def put_made_by(
    store: ResultStore, image_hash: str, operation: str, endpoint: str, **params: Any
) -> str:
    """An entry as a backend at ``endpoint`` would leave it (a 2x-sized RGBA PNG)."""
    op = OPERATIONS[operation]
    full = op.canonical_params(params)
    key = cache_key(image_hash, operation, Endpoint(endpoint), full)
    meta = ResultMeta(
        image_hash=image_hash,
        operation=operation,
        endpoint=Endpoint(endpoint),
        params=full,
        backend=endpoint.split("/")[0],
        width=8,
        height=6,
        content_type="image/png",
    )
    store.put(key, png(seed=len(store)), meta)
    return key


# -- 9.1: export states only what the format can say; import believes only that ---------------


def test_export_writes_only_the_default_fal_call_and_counts_the_rest(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "a")
    put_made_by(store, H1, "upscale", "fal-ai/seedvr/upscale/image")  # scale=2: the default
    put_made_by(store, H1, "upscale", "fal-ai/seedvr/upscale/image", scale=4)
    put_made_by(store, H1, "upscale", "local/upscale", scale=2)
    put_made_by(store, H1, "remove_background", "fal-ai/some-other-model")
    put_made_by(store, H2, "face_detail", "fal-ai/codeformer")

    target = tmp_path / "out" / "image-processing-cache.json"
    done = store.export_legacy_json(target)

    assert done.exported == 2 and done.root == store.root
    assert done.left_out == {
        "made by another endpoint or with non-default parameters "
        "(the original format cannot say which)": 3
    }
    legacy = json.loads(target.read_text())
    assert set(legacy) == {H1, H2}
    assert set(legacy[H1]) == {"upscaled", "timestamp"}
    assert set(legacy[H2]) == {"faceDetailed", "timestamp"}
    upscaled = store.get(default_key(H1, "upscale"))
    assert upscaled is not None
    assert (store.root / legacy[H1]["upscaled"]).read_bytes() == upscaled.path.read_bytes()


def test_the_export_summary_says_how_many_were_left_out_and_why(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "a")
    put_made_by(store, H1, "upscale", "fal-ai/seedvr/upscale/image")
    for n in range(12):
        put_made_by(store, f"{n:064x}", "upscale", "local/upscale", scale=4)

    text = str(export(store, tmp_path / "x.json"))

    assert "Exported 1 results" in text
    assert (
        "12 left out: made by another endpoint or with non-default parameters "
        "(the original format cannot say which)." in text
    )
    assert f"import it with --root {store.root}" in text


async def test_an_export_import_round_trip_never_makes_a_wrong_hit(
    fake_fal: FakeFal,  # noqa: F811
    tmp_path: Path,
    testdata: Path,
) -> None:
    photo = testdata / "chelsea.png"
    local = Processor(backend="local", cache_dir=tmp_path / "a")
    fal = Processor(backend="fal", store=local.store, environ={"FAL_KEY": KEY}, timeout=10)
    made_locally = await local.run("upscale", photo, scale=4)
    made_at_scale_4 = await fal.run("upscale", photo, scale=4)
    made_by_default = await fal.run("upscale", photo)  # scale=2
    done = local.store.export_legacy_json(tmp_path / "legacy.json")
    assert done.exported == 1 and sum(done.left_out.values()) == 2

    other = ResultStore(tmp_path / "b")
    assert other.import_legacy_json(done.path, root=done.root).imported == 1
    fal_b = Processor(backend="fal", store=other, environ={"FAL_KEY": KEY}, timeout=10)
    local_b = Processor(backend="local", store=other)
    submits = fake_fal.calls["submit"]

    hit = await fal_b.run("upscale", photo)
    assert hit.cache_hit and hit.path.read_bytes() == made_by_default.path.read_bytes()
    assert hit.image.size == made_by_default.image.size
    assert fake_fal.calls["submit"] == submits
    at_4 = await fal_b.run("upscale", photo, scale=4)
    assert not at_4.cache_hit and fake_fal.calls["submit"] == submits + 1
    assert at_4.image.size == made_at_scale_4.image.size
    assert not (await local_b.run("upscale", photo, scale=4)).cache_hit
    assert made_locally.image.size == at_4.image.size
    for proc in (local, fal, fal_b, local_b):
        proc.close()


def test_imported_entries_answer_the_default_fal_call_and_nothing_else(tmp_path: Path) -> None:
    site = tmp_path / "public"
    (site / "uploads").mkdir(parents=True)
    (site / "uploads" / "up.png").write_bytes(png((16, 12), "RGB"))
    (site / "uploads" / "nobg.png").write_bytes(png((8, 8), "RGBA"))
    legacy = write_legacy(
        tmp_path / "cache.json",
        {H1: {"upscaled": "/uploads/up.png", "bgRemoved": "/uploads/nobg.png", "timestamp": 5}},
    )
    store = ResultStore(tmp_path / "store")
    assert store.import_legacy_json(legacy, root=site).imported == 2
    for entry in store.entries():
        op = OPERATIONS[entry.operation]
        assert entry.key == default_key(H1, entry.operation)
        assert (entry.endpoint, entry.endpoint_arguments) == (op.fal_endpoint, {})
        assert entry.params == op.canonical_params() and entry.backend == "fal"
    assert store.get(cache_key(H1, "upscale", Endpoint("local/upscale"), {"scale": 2})) is None
    assert store.get(cache_key(H1, "upscale", Endpoint(OPERATIONS["upscale"].fal_endpoint),
                               {"scale": 4})) is None  # fmt: skip


def test_an_earlier_export_with_absolute_paths_imports_with_root_slash(tmp_path: Path) -> None:
    old = ResultStore(tmp_path / "old")
    put_made_by(old, H1, "face_detail", "fal-ai/codeformer")
    [entry] = old.entries()
    legacy = write_legacy(
        tmp_path / "elsewhere" / "legacy.json",
        {H1: {"faceDetailed": str(entry.path), "timestamp": 1672531200000}},
    )
    new = ResultStore(tmp_path / "new")
    assert new.import_legacy_json(legacy).reasons == {"the path leads outside --root": 1}
    assert new.import_legacy_json(legacy, root="/").imported == 1
    assert new.get(entry.key) is not None  # the same default key


# -- 9.10: paths stay inside root --------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """An old app's public folder, with a precious (and perfectly valid) image beside it."""
    public = tmp_path / "public"
    (public / "uploads").mkdir(parents=True)
    (public / "uploads" / "ok.png").write_bytes(png())
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "precious.png").write_bytes(png(seed=99))
    (public / "uploads" / "link.png").symlink_to(tmp_path / "secret" / "precious.png")
    (public / "uploads" / "link-dir").symlink_to(tmp_path / "secret")
    return public


@pytest.mark.parametrize(
    "named",
    [
        "../secret/precious.png",
        "/../secret/precious.png",
        "uploads/../../secret/precious.png",
        "/uploads/link.png",
        "uploads/link-dir/precious.png",
        "{secret}/precious.png",
    ],
)
def test_a_path_that_leaves_root_is_refused_and_counted(
    tmp_path: Path, site: Path, named: str
) -> None:
    named = named.format(secret=tmp_path / "secret")
    legacy = write_legacy(tmp_path / "c.json", {H1: {"bgRemoved": named}, H2: {
        "bgRemoved": "/uploads/ok.png"}})  # fmt: skip
    store = ResultStore(tmp_path / "store")

    done = store.import_legacy_json(legacy, root=site)

    assert done.imported == 1 and done.reasons == {"the path leads outside --root": 1}
    assert [s.item for s in done.skipped] == [named]
    precious = (tmp_path / "secret" / "precious.png").read_bytes()
    assert all(e.path.read_bytes() != precious for e in store.entries())
    assert (tmp_path / "secret" / "precious.png").read_bytes() == precious


def test_a_symlink_that_stays_inside_root_is_followed(tmp_path: Path, site: Path) -> None:
    (site / "uploads" / "alias.png").symlink_to(site / "uploads" / "ok.png")
    legacy = write_legacy(tmp_path / "c.json", {H1: {"bgRemoved": "/uploads/alias.png"}})
    assert ResultStore(tmp_path / "store").import_legacy_json(legacy, root=site).imported == 1


def test_relative_paths_default_to_the_json_files_folder(tmp_path: Path, site: Path) -> None:
    legacy = write_legacy(site / "cache.json", {H1: {"bgRemoved": "uploads/ok.png"}})
    assert ResultStore(tmp_path / "store").import_legacy_json(legacy).imported == 1


def test_a_root_that_is_not_a_folder_is_a_clear_error(tmp_path: Path) -> None:
    legacy = write_legacy(tmp_path / "c.json", {})
    for root in (tmp_path / "nope", "~no-such-user-here", "a\x00b"):
        with pytest.raises(StoreError, match="no such folder"):
            ResultStore(tmp_path / "store").import_legacy_json(legacy, root=root)


# -- 9.10: result files are decoded in full and must fit the operation --------------------------


@pytest.mark.parametrize(
    ("slot", "content", "reason"),
    [
        ("bgRemoved", truncated_png(), "not a complete image"),
        ("bgRemoved", b"", "not a complete image"),
        ("bgRemoved", b"<html>not found</html>", "not a complete image"),
        ("bgRemoved", png((8, 6), "RGB"), "its size or channels cannot be"),
        ("upscaled", png((9, 6), "RGB"), "its size or channels cannot be"),
        ("upscaled", png((8, 7), "RGB"), "its size or channels cannot be"),
        ("faceDetailed", b"GIF89a", "not a complete image"),
    ],
)
def test_a_result_file_that_is_damaged_or_cannot_be_the_operations_is_skipped(
    tmp_path: Path, slot: str, content: bytes, reason: str
) -> None:
    (tmp_path / "r.png").write_bytes(content)
    legacy = write_legacy(tmp_path / "c.json", {H1: {slot: "r.png"}})
    store = ResultStore(tmp_path / "store")

    done = store.import_legacy_json(legacy)

    assert done.imported == 0 and len(store) == 0
    [(said, count)] = done.reasons.items()
    assert said.startswith(reason) and count == 1


def test_an_image_in_a_format_the_cache_does_not_store_is_skipped(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8), "red").save(tmp_path / "r.gif")
    legacy = write_legacy(tmp_path / "c.json", {H1: {"faceDetailed": "r.gif"}})
    done = ResultStore(tmp_path / "store").import_legacy_json(legacy)
    assert done.reasons == {"not a PNG, JPEG or WebP image": 1}


def test_a_jpeg_that_fits_is_imported_as_a_jpeg(tmp_path: Path) -> None:
    (tmp_path / "r.jpg").write_bytes(jpeg((16, 12)))
    legacy = write_legacy(tmp_path / "c.json", {H1: {"upscaled": "r.jpg"}})
    store = ResultStore(tmp_path / "store")
    assert store.import_legacy_json(legacy).imported == 1
    [entry] = store.entries()
    assert entry.content_type == "image/jpeg" and (entry.width, entry.height) == (16, 12)


def test_a_folder_or_a_fifo_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "folder.png").mkdir()
    os.mkfifo(tmp_path / "pipe.png")  # opening it for reading would block for ever
    legacy = write_legacy(
        tmp_path / "c.json", {H1: {"bgRemoved": "folder.png", "upscaled": "pipe.png"}}
    )
    done = ResultStore(tmp_path / "store").import_legacy_json(legacy)
    assert done.reasons == {"not a regular file": 2}


# -- 9.10: values of the wrong type or out of range ---------------------------------------------


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({H1: "uploads/ok.png"}, "the image's record is not a JSON object"),
        ({H1: None}, "the image's record is not a JSON object"),
        ({H1: ["uploads/ok.png"]}, "the image's record is not a JSON object"),
        ({"ab" * 31: {"bgRemoved": "ok.png"}}, "the image hash is not 64 hex digits"),
        ({"zz" * 32: {"bgRemoved": "ok.png"}}, "the image hash is not 64 hex digits"),
        ({H1 + "\n": {"bgRemoved": "ok.png"}}, "the image hash is not 64 hex digits"),
        ({"../../etc": {"bgRemoved": "ok.png"}}, "the image hash is not 64 hex digits"),
        ({H1: {"bgRemoved": "ok.png", "timestamp": "1672531200000"}}, "the timestamp is not"),
        ({H1: {"bgRemoved": "ok.png", "timestamp": None}}, "the timestamp is not"),
        ({H1: {"bgRemoved": "ok.png", "timestamp": float("nan")}}, "the timestamp is not"),
        ({H1: {"bgRemoved": "ok.png", "timestamp": float("inf")}}, "the timestamp is not"),
        ({H1: {"bgRemoved": "ok.png", "timestamp": 10**30}}, "the timestamp is not"),
        ({H1: {"bgRemoved": "ok.png", "timestamp": 1e308}}, "the timestamp is not"),
        ({H1: {"bgRemoved": "ok.png", "timestamp": -1}}, "the timestamp is not"),
        ({H1: {"bgRemoved": "ok.png", "timestamp": True}}, "the timestamp is not"),
        ({H1: {"bgRemoved": 7}}, "the path is not a string"),
        ({H1: {"bgRemoved": ["ok.png"]}}, "the path is not a string"),
        ({H1: {"bgRemoved": "ok\x00.png"}}, "the path is not a string"),
        ({H1: {"bgRemoved": "gone.png"}}, "result file missing"),
    ],
)
def test_a_bad_value_is_skipped_and_counted_with_its_reason(
    tmp_path: Path, document: dict[str, Any], reason: str
) -> None:
    (tmp_path / "ok.png").write_bytes(png())
    fine = {H2: {"bgRemoved": "ok.png", "timestamp": 1672531200000}}
    legacy = write_legacy(tmp_path / "c.json", {**document, **fine})
    store = ResultStore(tmp_path / "store", clock=lambda: NOW_MS / 1000)

    done = store.import_legacy_json(legacy)

    assert done.imported == 1 and len(done.skipped) == 1
    assert done.skipped[0].reason.startswith(reason)
    [entry] = store.entries()
    assert entry.image_hash == H2 and entry.created == 1672531200.0
    assert f"1 skipped: {done.skipped[0].reason}" in str(import_legacy(store, legacy))


def test_empty_slots_and_unknown_fields_are_not_items(tmp_path: Path) -> None:
    (tmp_path / "ok.png").write_bytes(png())
    legacy = write_legacy(
        tmp_path / "c.json",
        {H1: {"bgRemoved": "ok.png", "upscaled": None, "faceDetailed": "", "original": 3}},
    )
    done = ResultStore(tmp_path / "store").import_legacy_json(legacy)
    assert (done.imported, done.skipped) == (1, ())


@pytest.mark.parametrize("text", ["[]", "null", '"x"', "3", "{", "\xff\xfe", "[" * 100_000])
def test_a_file_that_is_not_a_json_object_is_a_clear_error(tmp_path: Path, text: str) -> None:
    legacy = tmp_path / "c.json"
    legacy.write_bytes(text.encode("latin-1"))
    with pytest.raises(StoreError, match=r"c\.json"):
        ResultStore(tmp_path / "store").import_legacy_json(legacy)


def test_the_import_summary_lists_each_reason_with_its_count(tmp_path: Path, site: Path) -> None:
    legacy = write_legacy(
        tmp_path / "c.json",
        {f"{n:064x}": {"bgRemoved": f"/uploads/gone-{n}.png", "timestamp": 1} for n in range(5)}
        | {H1: {"bgRemoved": "/../secret/precious.png"}, H2: {"bgRemoved": "/uploads/ok.png"}},
    )
    text = str(import_legacy(ResultStore(tmp_path / "store"), legacy, root=site))
    assert "Imported 1 results" in text and "6 skipped." in text
    assert "  5 skipped: result file missing (/uploads/gone-0.png" in text and ", …)" in text
    assert "  1 skipped: the path leads outside --root (/../secret/precious.png)" in text


# -- nothing outside the store is deleted; the store stays rebuildable --------------------------


def test_import_copies_and_never_touches_the_originals(tmp_path: Path, site: Path) -> None:
    legacy = write_legacy(tmp_path / "c.json", {H1: {"bgRemoved": "/uploads/ok.png"}})
    store = ResultStore(tmp_path / "store")
    store.import_legacy_json(legacy, root=site)
    assert store.import_legacy_json(legacy, root=site).already_present == 1
    store.clean(max_age_days=0)
    assert len(store) == 0 and (site / "uploads" / "ok.png").read_bytes() == png()


def rebuilt(store: ResultStore) -> ResultStore:
    """The store opened again after its index was deleted (rebuilt from the sidecars)."""
    store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(store.index_path) + suffix).unlink(missing_ok=True)
    return ResultStore(store.root)


# Result files a hostile record may name, relative to the JSON file's folder (the root).
FILES = {
    "ok.png": png((8, 6)),
    "rgb.png": png((8, 6), "RGB"),
    "odd.png": png((7, 5)),
    "ok.jpg": jpeg((16, 12)),
    "truncated.png": truncated_png(),
    "empty.png": b"",
    "text.png": b"not an image at all",
}
NAMES = [
    *FILES,
    "gone.png",
    "folder",
    "../outside/precious.png",
    "/../outside/precious.png",
    "link-out.png",
    "sub/../ok.png",
    "/ok.png",
    ".",
    "",
]
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
RECORDS = st.fixed_dictionaries(
    {},
    optional={
        "bgRemoved": st.sampled_from(NAMES) | JSON_VALUES,
        "upscaled": st.sampled_from(NAMES) | JSON_VALUES,
        "faceDetailed": st.sampled_from(NAMES) | JSON_VALUES,
        "timestamp": st.sampled_from([1672531200000, 0, NOW_MS]) | JSON_VALUES,
        "extra": JSON_VALUES,
    },
)
HASHES = st.sampled_from([H1, H2, H1.upper(), "ab" * 31, "../" * 3]) | st.text(max_size=70)
DOCUMENTS = st.dictionaries(HASHES, RECORDS | JSON_VALUES, max_size=6) | JSON_VALUES


def items_in(document: Any) -> int:
    """How many items a document holds: a bad record is one, a good one one per result."""
    total = 0
    for image_hash, record in document.items():
        if not isinstance(record, dict):
            total += 1
            continue
        named = [record.get(op.legacy_key) for op in OPERATIONS.values()]
        timestamp = record.get("timestamp", 0)
        ok_time = (
            isinstance(timestamp, int | float)
            and not isinstance(timestamp, bool)
            and 0 <= timestamp <= NOW_MS + 86_400_000
        )
        hex64 = len(image_hash) == 64 and all(c in "0123456789abcdefABCDEF" for c in image_hash)
        if not (hex64 and ok_time):
            total += 1
        else:
            total += sum(1 for n in named if n is not None and n != "")
    return total


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=DOCUMENTS)
def test_a_hostile_file_never_makes_a_wrong_entry_or_reads_outside_root(
    tmp_path_factory: pytest.TempPathFactory, document: Any
) -> None:
    base = tmp_path_factory.mktemp("hostile")
    root = base / "root"
    (root / "sub").mkdir(parents=True)
    (root / "folder").mkdir()
    for name, content in FILES.items():
        (root / name).write_bytes(content)
    (base / "outside").mkdir()
    precious = png((8, 6), seed=77)
    (base / "outside" / "precious.png").write_bytes(precious)
    (root / "link-out.png").symlink_to(base / "outside" / "precious.png")
    legacy = root / "image-processing-cache.json"
    legacy.write_text(json.dumps(document))
    store = ResultStore(base / "store", clock=lambda: NOW_MS / 1000)

    if not isinstance(document, dict):
        with pytest.raises(StoreError):
            store.import_legacy_json(legacy)
        return
    done = store.import_legacy_json(legacy)

    assert done.imported + done.already_present + len(done.skipped) == items_in(document)
    assert len(store) == done.imported
    for entry in store.entries():
        op = OPERATIONS[entry.operation]
        assert entry.key == default_key(entry.image_hash, entry.operation)
        assert entry.endpoint == op.fal_endpoint and entry.params == op.canonical_params()
        assert entry.path.resolve().is_relative_to(store.root.resolve())
        assert entry.path.read_bytes() != precious
        with Image.open(entry.path) as img:
            img.load()
    assert (base / "outside" / "precious.png").read_bytes() == precious
    assert all((root / n).read_bytes() == c for n, c in FILES.items())
    again = rebuilt(store)
    assert {e.key for e in again.entries()} == {e.key for e in store.entries()}
    assert again.verify(fix=False).damaged == []
    again.close()


def test_a_hostile_import_then_a_rebuild_of_the_index_is_all_good(tmp_path: Path) -> None:
    (tmp_path / "ok.png").write_bytes(png())
    (tmp_path / "up.png").write_bytes(png((16, 12), "RGB"))
    document = {
        H1: {"bgRemoved": "ok.png", "upscaled": "up.png", "timestamp": 1672531200000.5},
        H2.upper(): {"faceDetailed": "ok.png", "timestamp": 0},
        "c" * 64: {"faceDetailed": "ok.png", "timestamp": float("nan")},
        "d" * 64: {"faceDetailed": "ok.png\udc80"},
        "e" * 64: {"faceDetailed": "ok.png", "timestamp": 10**40},
    }
    legacy = tmp_path / "c.json"
    legacy.write_text(json.dumps(document))
    store = ResultStore(tmp_path / "store", clock=lambda: NOW_MS / 1000)
    done = store.import_legacy_json(legacy)
    assert done.imported == 3 and len(done.skipped) == 3
    again = rebuilt(store)
    assert len(again) == 3 and again.verify(fix=False).damaged == []
    assert {e.image_hash for e in again.entries()} == {H1, H2}
    assert sorted(e.created for e in again.entries()) == [0.0, 1672531200.0005, 1672531200.0005]
