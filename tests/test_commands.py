"""The shared command layer, called as ``%imgcache`` and ``nbimgprep`` call it.

Each test gets its own copy of a store the real engine filled (local backend: three photos,
five results; see cachefill.py), calls one function of :mod:`nbimgprep.commands` and looks at
the report object it returns: its data, its text and its exit code. How the faces show those
reports (HTML, UsageError, exit codes) is tested in test_magics.py and test_cli.py.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from cachefill import DAY, LocalWorkUnderFalNames, fill_with_engine, put_entry
from nbimgprep import commands
from nbimgprep.errors import AmbiguousPrefix, NbimgprepError, NotInCache, StoreError, StoreNotFound
from nbimgprep.reports import (
    CacheInspection,
    CacheListing,
    CacheStats,
    CleanSummary,
    ExportSummary,
    ImportSummary,
    RemovalSummary,
    VerifySummary,
)
from nbimgprep.store import DEFAULT_MAX_AGE_DAYS, ResultStore


@pytest.fixture
def store(cache: Path) -> ResultStore:
    return ResultStore(cache)


# -- list -------------------------------------------------------------------------------------


def test_list_has_one_row_per_entry(store: ResultStore) -> None:
    listing = commands.list_entries(store)
    assert isinstance(listing, CacheListing)
    assert {e.key for e in listing.entries} == {e.key for e in store.entries()}
    text = str(listing)
    assert text.splitlines()[0].split() == [
        "key", "image", "operation", "endpoint", "size", "dimensions", "age", "hits"
    ]  # fmt: skip
    assert text.count("local/upscale") == 3
    assert "192x192" in text  # the 96px astronaut, upscaled by 2
    assert text.endswith("5 entries, sorted by age.")
    assert listing.exit_code == 0


def test_list_filters_limits_and_sorts(store: ResultStore) -> None:
    upscales = commands.list_entries(store, op="upscale").entries
    assert [e.operation for e in upscales] == ["upscale"] * 3

    limited = commands.list_entries(store, limit=2)
    assert len(limited.entries) == 2
    assert "2 of 5 entries" in str(limited)
    assert "2 of 3 entries" in str(commands.list_entries(store, op="upscale", limit=2))

    by_age = commands.list_entries(store, sort="age").entries
    assert [e.created for e in by_age] == sorted((e.created for e in by_age), reverse=True)
    by_size = commands.list_entries(store, sort="size").entries
    assert [e.size for e in by_size] == sorted((e.size for e in by_size), reverse=True)

    favourite = by_age[-1]
    for _ in range(3):
        assert store.lookup(favourite.key) is not None
    by_hits = commands.list_entries(store, sort="hits").entries
    assert (by_hits[0].key, by_hits[0].hits) == (favourite.key, 3)


def test_list_by_tag_shows_only_the_tagged_results(store: ResultStore) -> None:
    rejected, accepted, *_ = store.entries()
    store.tag(rejected.key, "rejected")
    store.tag(accepted.key, "accepted")
    assert [e.key for e in commands.list_entries(store, tag="rejected").entries] == [rejected.key]
    assert [e.key for e in commands.list_entries(store, tag="accepted").entries] == [accepted.key]
    nothing = commands.list_entries(store, tag="nobody-used-this")
    assert nothing.entries == []
    assert str(nothing) == "No entries match."  # the cache itself is not empty
    assert store.lookup(rejected.key) is not None  # a tag never changes what a lookup returns


def test_list_of_an_empty_store_says_so(tmp_path: Path) -> None:
    listing = commands.list_entries(ResultStore(tmp_path / "empty"))
    assert listing.entries == []
    assert str(listing) == "The cache is empty."
    assert listing.exit_code == 0


def test_list_ages_are_counted_from_now(store: ResultStore) -> None:
    newest = store.entries(sort="age")[0]
    listing = commands.list_entries(store, limit=1, now=newest.created + 3 * DAY)
    assert listing.table().rows[0][6] == "3d"


# -- inspect ----------------------------------------------------------------------------------


def test_inspect_an_image_path_groups_its_results_with_the_input(
    store: ResultStore, photos: dict[str, Path]
) -> None:
    report = commands.inspect(store, str(photos["astronaut"]))
    assert isinstance(report, CacheInspection)
    assert sorted(e.operation for e in report.entries) == ["face_detail", "upscale", "upscale"]
    [group] = report.groups
    assert group.input_path == photos["astronaut"]

    text = str(report)
    for e in report.entries:
        assert e.key in text
        assert str(e.path) in text
    for field in ("result_sha256", "backend_seconds", "created", "last_hit", "endpoint"):
        assert field in text


def test_inspect_by_key_prefix_and_by_image_hash_prefix(store: ResultStore) -> None:
    one = store.entries(op="remove_background")[0]
    assert [e.key for e in commands.inspect(store, one.key[:10]).entries] == [one.key]

    astronaut = store.entries(op="face_detail")[0].image_hash
    by_image = commands.inspect(store, astronaut[:12])
    assert {e.image_hash for e in by_image.entries} == {astronaut}
    assert len(by_image.entries) == 3
    # the engine recorded where the input was, and it is still there, unchanged
    assert by_image.groups[0].input_path is not None


def test_inspect_shows_no_input_once_the_input_file_changed(
    store: ResultStore, photos: dict[str, Path], tmp_path: Path
) -> None:
    from nbimgprep import Processor

    photo = tmp_path / "new.png"
    Image.radial_gradient("L").resize((48, 48)).save(photo)  # an image the store has not seen
    proc = Processor(backend="local", store=store)
    try:
        image_hash = proc.run_sync("face_detail", photo).image_hash
    finally:
        proc.close()
    assert commands.inspect(store, image_hash[:12]).groups[0].input_path == photo

    Image.linear_gradient("L").resize((48, 48)).save(photo)  # another picture, same name
    report = commands.inspect(store, image_hash[:12])
    assert report.groups[0].input_path is None
    assert "input: not on disk (or changed)" in str(report)


def test_inspect_of_nothing_or_of_an_ambiguous_prefix_raises(store: ResultStore) -> None:
    with pytest.raises(NotInCache, match="no cache key or image hash starts with"):
        commands.inspect(store, "0000000000")
    with pytest.raises(NotInCache, match="not a cache key"):
        commands.inspect(store, "no-such-file.png")
    put_entry(store, 1, key="abcd" + "0" * 60)
    put_entry(store, 2, key="abcd" + "1" * 60)
    with pytest.raises(AmbiguousPrefix, match="matches 2 entries"):
        commands.inspect(store, "abcd")


# -- stats ------------------------------------------------------------------------------------


def test_stats_counts_entries_bytes_hits_and_time_saved(store: ResultStore) -> None:
    entry = store.entries(op="upscale")[0]
    store.lookup(entry.key)
    store.lookup(entry.key)

    report = commands.stats(store)
    assert isinstance(report, CacheStats)
    assert report.root == store.root
    assert report.stats.entries == 5
    assert report.stats.hits >= 2
    text = str(report)
    assert f"store: {store.root}" in text
    assert "hit rate" in text
    assert f"{report.stats.seconds_saved:.1f} s" in text
    per_operation = text.split("\n\n", 1)[1]
    for op in ("upscale", "face_detail", "remove_background"):
        assert op in per_operation


# -- clean ------------------------------------------------------------------------------------


def test_clean_without_criterion_removes_what_is_unused_for_the_default_age(
    store: ResultStore,
) -> None:
    assert DEFAULT_MAX_AGE_DAYS == 30
    old = put_entry(store, 1, created=time.time() - 31 * DAY)
    recent = put_entry(store, 2, created=time.time() - 29 * DAY)

    report = commands.clean(store)
    assert isinstance(report, CleanSummary)
    assert [e.key for e in report.removed] == [old]
    assert store.get(old) is None
    assert store.get(recent) is not None
    assert report.freed_bytes == report.removed[0].size
    assert str(report).endswith(
        f"Removed 1 entries, freed {report.freed_bytes} B. Criteria: not used for 30 days."
    )
    assert report.exit_code == 0


def test_clean_default_age_can_be_set(store: ResultStore) -> None:
    put_entry(store, 1, created=time.time() - 8 * DAY)
    assert commands.clean(store).removed == []
    assert len(commands.clean(store, default_max_age_days=7).removed) == 1


def test_clean_with_nothing_to_clean_says_so(store: ResultStore) -> None:
    report = commands.clean(store, max_age_days=7)
    assert report.removed == []
    assert str(report) == "Nothing to clean. Criteria: not used for 7 days."
    assert len(store) == 5


def test_clean_max_age_zero_removes_everything(store: ResultStore) -> None:
    report = commands.clean(store, max_age_days=0)
    assert len(report.removed) == 5
    assert "everything (max age 0 days)" in str(report)
    assert len(store) == 0
    assert not list((store.root / "results").rglob("*.png"))


def test_clean_dry_run_deletes_nothing(store: ResultStore) -> None:
    files_before = sorted((store.root / "results").rglob("*.*"))
    report = commands.clean(store, max_age_days=0, dry_run=True)
    assert len(report.removed) == 5
    assert "Dry run: would remove 5 entries" in str(report)
    assert len(store) == 5
    assert sorted((store.root / "results").rglob("*.*")) == files_before


def test_clean_of_more_than_the_limit_needs_yes(store: ResultStore) -> None:
    for seed in range(commands.CLEAN_CONFIRM_LIMIT - 2):
        put_entry(store, seed)
    assert len(store) == commands.CLEAN_CONFIRM_LIMIT + 3

    refused = commands.clean(store, max_age_days=0)
    assert refused.refused
    assert refused.exit_code == 1
    assert len(refused.removed) == 13  # listed, not removed
    assert f"more than {commands.CLEAN_CONFIRM_LIMIT}. Add --yes" in str(refused)
    assert len(store) == 13

    done = commands.clean(store, max_age_days=0, yes=True)
    assert len(done.removed) == 13
    assert not done.refused
    assert len(store) == 0


def test_clean_of_exactly_the_limit_needs_no_yes(store: ResultStore) -> None:
    for seed in range(commands.CLEAN_CONFIRM_LIMIT - 5):
        put_entry(store, seed)
    assert len(commands.clean(store, max_age_days=0).removed) == commands.CLEAN_CONFIRM_LIMIT
    assert len(store) == 0


def test_clean_missing_removes_entries_whose_file_is_gone(store: ResultStore) -> None:
    victim = store.entries(op="remove_background")[0]
    victim.path.unlink()
    report = commands.clean(store, missing=True)
    assert [e.key for e in report.removed] == [victim.key]
    assert "Criteria: result file missing." in str(report)
    assert len(store) == 4


def test_clean_max_size_evicts_the_least_recently_hit_first(store: ResultStore) -> None:
    entries = store.entries(sort="age")
    newest = entries[0]
    for e in entries[1:]:  # everything but the newest is hit now
        assert store.lookup(e.key) is not None
    total = store.stats().bytes

    report = commands.clean(store, max_size=total - 1)
    assert [e.key for e in report.removed] == [newest.key]
    assert "least recently hit first" in str(report)
    assert store.stats().bytes <= total - 1


def test_clean_criteria_combine(store: ResultStore) -> None:
    old = put_entry(store, 1, created=time.time() - 40 * DAY)
    broken = store.entries(op="face_detail")[0]
    broken.path.unlink()
    report = commands.clean(store, max_age_days=30, missing=True)
    assert {e.key for e in report.removed} == {old, broken.key}
    assert "not used for 30 days; result file missing" in str(report)


# -- rm ---------------------------------------------------------------------------------------


def test_remove_a_key_deletes_that_entry(store: ResultStore) -> None:
    entry = store.entries(op="remove_background")[0]
    report = commands.remove(store, entry.key[:12])
    assert isinstance(report, RemovalSummary)
    assert [e.key for e in report.removed] == [entry.key]
    assert store.get(entry.key) is None
    assert not entry.path.exists()
    assert f"Removed 1 entries matching {entry.key[:12]!r}" in str(report)


def test_remove_an_image_hash_deletes_all_its_entries(store: ResultStore) -> None:
    image_hash = store.entries(op="face_detail")[0].image_hash
    assert len(commands.remove(store, image_hash[:16]).removed) == 3
    assert len(store) == 2


def test_remove_of_nothing_raises_and_removes_nothing(store: ResultStore) -> None:
    with pytest.raises(NotInCache):
        commands.remove(store, "0000000000")
    assert len(store) == 5


# -- verify -----------------------------------------------------------------------------------


def test_verify_of_intact_results(store: ResultStore) -> None:
    report = commands.verify(store)
    assert isinstance(report, VerifySummary)
    assert (report.report.checked, report.report.damaged) == (5, [])
    assert str(report) == "Checked 5 results: all intact."
    assert report.exit_code == 0


def test_verify_drops_corrupt_and_missing_results(store: ResultStore) -> None:
    corrupt = store.entries(op="face_detail")[0]
    corrupt.path.write_bytes(b"\0" * corrupt.size)  # same size: only re-hashing sees it
    missing = store.entries(op="remove_background")[0]
    missing.path.unlink()

    report = commands.verify(store)
    damaged = {e.key: reason for e, reason in report.report.damaged}
    assert set(damaged) == {corrupt.key, missing.key}
    assert "content differs" in damaged[corrupt.key]
    assert "2 damaged; their entries were dropped" in str(report)
    assert report.exit_code == 1
    assert len(store) == 3
    assert commands.verify(store).exit_code == 0


# -- export and import ------------------------------------------------------------------------


def test_export_leaves_out_what_the_original_format_cannot_state(
    store: ResultStore, tmp_path: Path
) -> None:
    exported = commands.export(store, tmp_path / "legacy.json")  # local results only
    assert exported.count == 0 and exported.left_out == {
        "made by another endpoint or with non-default parameters "
        "(the original format cannot say which)": 5
    }
    assert str(exported) == (
        f"Exported 0 results to {tmp_path / 'legacy.json'} (legacy format).\n"
        "5 left out: made by another endpoint or with non-default parameters "
        "(the original format cannot say which)."
    )


def test_export_then_import_into_an_empty_store_round_trips(
    tmp_path: Path, photos: dict[str, Path]
) -> None:
    fill_with_engine(tmp_path / "made", photos, backend=LocalWorkUnderFalNames())
    store = ResultStore(tmp_path / "made")
    target = tmp_path / "legacy" / "image-processing-cache.json"
    exported = commands.export(store, target)
    assert isinstance(exported, ExportSummary)
    # the astronaut's upscale at scale=4 is not the default call: the format cannot state it
    assert exported.count == 4 and sum(exported.left_out.values()) == 1
    assert str(exported).startswith(f"Exported 4 results to {target} (legacy format).")
    assert str(exported).endswith(f"import it with --root {store.root}.")
    legacy = json.loads(target.read_text())
    assert set(legacy) == {e.image_hash for e in store.entries()}
    for record in legacy.values():
        assert isinstance(record["timestamp"], int)
        assert set(record) - {"timestamp"} <= {"bgRemoved", "upscaled", "faceDetailed"}

    fresh = ResultStore(tmp_path / "fresh")
    imported = commands.import_legacy(fresh, target, root=store.root)
    assert isinstance(imported, ImportSummary)
    assert imported.report.imported == 4
    assert str(imported).startswith(f"Imported 4 results from {target}; 0 were already")

    again = tmp_path / "again.json"
    commands.export(fresh, again)
    second = json.loads(again.read_text())
    assert {h: sorted(r) for h, r in second.items()} == {h: sorted(r) for h, r in legacy.items()}
    for image_hash, record in legacy.items():
        for slot in ("bgRemoved", "upscaled", "faceDetailed"):
            if slot in record:
                original = (store.root / record[slot]).read_bytes()
                assert (fresh.root / second[image_hash][slot]).read_bytes() == original
    assert commands.verify(fresh).report.damaged == []
    assert commands.import_legacy(fresh, target, root=store.root).report.already_present == 4


def test_import_with_root_finds_web_paths_and_counts_missing(
    tmp_path: Path, photos: dict[str, Path]
) -> None:
    app = tmp_path / "old-app"
    processed = app / "public" / "uploads" / "processed_images"
    processed.mkdir(parents=True)
    with Image.open(photos["chelsea"]) as cat:  # background removal leaves an alpha channel
        cat.convert("RGBA").save(processed / "cat-nobg.png")
    legacy = {
        "a" * 64: {
            "bgRemoved": "/uploads/processed_images/cat-nobg.png",
            "timestamp": 1672531200000,
        },
        "b" * 64: {"upscaled": "/uploads/processed_images/gone.png", "timestamp": 1672531200000},
    }
    cache_file = app / ".cache" / "image-processing-cache.json"
    cache_file.parent.mkdir()
    cache_file.write_text(json.dumps(legacy))

    store = ResultStore(tmp_path / "store")
    report = commands.import_legacy(store, cache_file, root=app / "public")
    assert report.report.imported == 1
    assert report.report.skipped_missing == ["/uploads/processed_images/gone.png"]
    assert "1 skipped." in str(report)
    assert "  1 skipped: result file missing (/uploads/processed_images/gone.png)" in str(report)
    assert (processed / "cat-nobg.png").exists()  # copied, never moved
    assert commands.inspect(store, "a" * 12).entries[0].operation == "remove_background"


def test_import_of_a_missing_file_raises(store: ResultStore, tmp_path: Path) -> None:
    with pytest.raises(NbimgprepError, match="no such file"):
        commands.import_legacy(store, tmp_path / "nope.json")


def test_export_to_a_folder_or_an_unwritable_place_raises(
    store: ResultStore, tmp_path: Path
) -> None:
    with pytest.raises(StoreError, match=f"{tmp_path} is a folder; give the path of the JSON"):
        commands.export(store, tmp_path)
    with pytest.raises(StoreError, match="export path is empty"):
        commands.export(store, "")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match=f"Cannot write {blocker / 'out.json'}"):
        commands.export(store, blocker / "out.json")
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "cannot read a legacy cache file"),
        ("{not json", "cannot read a legacy cache file"),
        ("[1, 2, 3]", "expected a JSON object keyed by image hash"),
        ('"text"', "expected a JSON object keyed by image hash"),
    ],
)
def test_import_of_a_file_that_is_not_a_legacy_cache_raises(
    store: ResultStore, tmp_path: Path, content: str, problem: str, photos: dict[str, Path]
) -> None:
    shutil.copy(photos["rocket"], tmp_path / "x.png")
    legacy = tmp_path / "cache.json"
    legacy.write_text(content)
    with pytest.raises(StoreError, match=problem):
        commands.import_legacy(store, legacy)
    assert len(store) == 5


@pytest.mark.parametrize("timestamp", ['"yesterday"', "null"])
def test_an_entry_with_a_bad_timestamp_is_skipped_and_counted(
    store: ResultStore, tmp_path: Path, timestamp: str
) -> None:
    legacy = tmp_path / "cache.json"
    legacy.write_text('{"' + "a" * 64 + '": {"upscaled": "x.png", "timestamp": ' + timestamp + "}}")
    report = commands.import_legacy(store, legacy)
    assert report.report.imported == 0 and len(store) == 5
    assert "1 skipped: the timestamp is not a number of milliseconds" in str(report)


def test_import_of_a_folder_or_with_a_missing_root_raises(
    store: ResultStore, tmp_path: Path
) -> None:
    with pytest.raises(StoreError, match="is a folder"):
        commands.import_legacy(store, tmp_path)
    legacy = tmp_path / "cache.json"
    legacy.write_text("{}")
    with pytest.raises(StoreError, match="no such folder"):
        commands.import_legacy(store, legacy, root=tmp_path / "gone")


def test_export_into_the_store_itself_is_refused(store: ResultStore) -> None:
    index = store.index_path.read_bytes()
    with pytest.raises(StoreError, match="is inside the store"):
        commands.export(store, store.index_path)
    assert store.index_path.read_bytes() == index
    assert len(store) == 5


@pytest.mark.parametrize("odd", ["a\x00b", "x" * 300])
def test_paths_the_os_refuses_are_store_errors_or_not_found(
    store: ResultStore, tmp_path: Path, odd: str
) -> None:
    with pytest.raises(StoreError, match=r"NUL character|File name too long"):
        commands.open_store(tmp_path / odd)
    with pytest.raises(StoreError, match=r"NUL character|File name too long"):
        commands.export(store, tmp_path / odd)
    with pytest.raises(StoreError, match=r"NUL character|no such file|File name too long"):
        commands.import_legacy(store, tmp_path / odd)
    with pytest.raises(NotInCache):
        commands.inspect(store, odd)
    with pytest.raises(NotInCache):
        commands.remove(store, str(tmp_path / odd))
    assert len(store) == 5


def test_export_in_an_unknown_format_raises(store: ResultStore, tmp_path: Path) -> None:
    with pytest.raises(NbimgprepError, match="the only format is 'legacy'"):
        commands.export(store, tmp_path / "x.csv", format="csv")
    assert not (tmp_path / "x.csv").exists()


# -- run --------------------------------------------------------------------------------------


def test_run_is_fresh_then_a_hit_and_records_failures(
    tmp_path: Path, photos: dict[str, Path]
) -> None:
    from nbimgprep import Processor

    proc = Processor(backend="local", cache_dir=tmp_path / "run")
    seen: list[str] = []
    try:
        first = commands.run(proc, "upscale", [str(photos["chelsea"])], scale=2)
        assert [i.status for i in first.items] == ["fresh"]
        missing = str(tmp_path / "missing.jpg")
        again = commands.run(
            proc,
            "upscale",
            [str(photos["chelsea"]), missing],
            scale=2,
            on_item=lambda item: seen.append(item.status),
        )
    finally:
        proc.close()
    assert sorted(seen) == ["failed", "hit"]  # as they finish; the report keeps input order
    hit, failed = again.items
    assert hit.result is not None and hit.result.cache_hit
    assert failed.result is None and failed.error and "no such file" in failed.error
    assert again.exit_code == 1
    assert again.footer() == "upscale: 2 images, 1 cache hits, 0 fresh, 1 failed."
    assert f"hit     {photos['chelsea']} -> {hit.result.path}" in str(again)


# -- execute: a parsed command line onto these functions --------------------------------------


def test_execute_calls_the_function_the_command_names(store: ResultStore) -> None:
    from nbimgprep.arguments import cache_parser, parse

    def never() -> object:
        raise AssertionError("a cache command must not build a processor")

    asked: list[bool] = []

    def opener(create: bool) -> ResultStore:
        asked.append(create)
        return store

    def execute(*argv: str) -> object:
        args = parse(cache_parser(), argv)
        return commands.execute(args, store=opener, processor=never)  # type: ignore[arg-type]

    listing = execute("list", "--op", "upscale", "--limit", "2")
    assert isinstance(listing, CacheListing)
    assert [e.operation for e in listing.entries] == ["upscale", "upscale"]
    plan = execute("clean", "--max-age-days", "0", "--dry-run")
    assert isinstance(plan, CleanSummary) and plan.dry_run and len(plan.removed) == 5


def test_only_import_may_create_a_store(store: ResultStore, tmp_path: Path) -> None:
    from nbimgprep.arguments import cache_parser, parse

    legacy = tmp_path / "legacy.json"
    legacy.write_text("{}")
    asked: dict[str, bool] = {}
    for argv in (["list"], ["stats"], ["verify"], ["inspect", "ab"], ["export", "x.json"],
                 ["clean"], ["rm", "ab"], ["import", str(legacy)]):  # fmt: skip

        def opener(create: bool, name: str = argv[0]) -> ResultStore:
            asked[name] = create
            raise StoreNotFound("stop here")

        with pytest.raises(StoreNotFound):
            commands.execute(parse(cache_parser(), argv), store=opener, processor=object)  # type: ignore[arg-type]
    assert [name for name, create in asked.items() if create] == ["import"]
    assert len(asked) == 8

    asked.clear()
    with pytest.raises(StoreError, match="no such file"):  # before any store is made
        commands.execute(
            parse(cache_parser(), ["import", str(tmp_path / "missing.json")]),
            store=opener,
            processor=object,  # type: ignore[arg-type]
        )
    assert asked == {}


# -- opening the store: every mistake is a StoreError naming the folder -----------------------


def test_open_store_on_a_folder_with_no_store_creates_nothing(tmp_path: Path) -> None:
    nowhere = tmp_path / "nowhere"
    with pytest.raises(StoreNotFound, match=f"No nbimgprep cache at {nowhere}"):
        commands.open_store(nowhere, create=False)
    assert not nowhere.exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreNotFound):
        commands.open_store(tmp_path / "empty", create=False)
    assert list((tmp_path / "empty").iterdir()) == []

    made = commands.open_store(nowhere)  # create=True, as import and run do
    assert len(made) == 0
    assert commands.open_store(nowhere, create=False).root == made.root


def test_open_store_finds_a_store_whose_index_was_lost(store: ResultStore) -> None:
    store.close()
    store.index_path.unlink()
    assert len(commands.open_store(store.root, create=False)) == 5


def test_open_store_refuses_an_empty_string_and_a_file(tmp_path: Path) -> None:
    for empty in ("", "   "):
        with pytest.raises(StoreError, match="empty string"):
            commands.open_store(empty)
    file = tmp_path / "notes.txt"
    file.write_text("hello")
    with pytest.raises(StoreError, match=f"{file} is a file"):
        commands.open_store(file)
    with pytest.raises(StoreError, match=f"{file} is a file"):
        commands.open_store(file, create=False)
    with pytest.raises(StoreError, match="Cannot create the cache directory"):
        commands.open_store(file / "cache")
    assert file.read_text() == "hello"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_open_store_in_a_folder_that_cannot_be_created(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(StoreError, match="Cannot create the cache directory"):
        commands.open_store(locked / "cache")
