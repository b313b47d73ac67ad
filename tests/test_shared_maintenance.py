"""Looking after the shared tier: list, find, clean, push and pull (shared.maintenance).

The commands (``%imgcache ... --shared``, ``nbimgprep cache push``) are thin over these.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from PIL import Image

from conftest import CountingBackend
from nbimgprep import NotInCache, Processor
from nbimgprep.shared import SharedTier, maintenance
from s3server import S3Server, fresh_s3_server, s3_server  # noqa: F401  (fixtures)

SLOW_MACHINE = 20.0


def machine(tmp_path: Path, name: str, server: S3Server, url: str) -> Processor:
    return Processor(
        CountingBackend(),  # type: ignore[arg-type]
        cache_dir=tmp_path / name,
        shared=SharedTier(url, options=server.options(), timeout=SLOW_MACHINE),
    )


def test_list_shows_every_record_newest_first_with_blob_sizes(
    tmp_path: Path, s3_server: S3Server, photos: dict[str, Path]
) -> None:
    url = s3_server.new_url()
    a = machine(tmp_path, "a", s3_server, url)
    made = [a.run_sync("upscale", p, scale=2) for p in photos.values()]
    listing = maintenance.list_records(a.shared.tier)  # type: ignore[union-attr]
    assert {r.key for r in listing.records} == {r.key for r in made}
    assert [r.created for r in listing.records] == sorted(
        (r.created for r in listing.records), reverse=True
    )
    assert listing.blob_count == 3
    assert listing.blob_bytes == sum(r.path.stat().st_size for r in made)
    assert listing.by_operation == {"upscale": (3, listing.blob_bytes)}


def test_find_by_key_prefix(tmp_path: Path, s3_server: S3Server, photos: dict[str, Path]) -> None:
    url = s3_server.new_url()
    a = machine(tmp_path, "a", s3_server, url)
    made = a.run_sync("upscale", photos["rocket"], scale=2)
    tier = a.shared.tier  # type: ignore[union-attr]
    assert maintenance.find(tier, made.key[:10]).key == made.key
    other = next(c for c in "0123456789abcdef" if not made.key.startswith(c))
    with pytest.raises(NotInCache):
        maintenance.find(tier, other * 8)
    with pytest.raises(NotInCache):
        maintenance.find(tier, "not-hex")


def test_clean_removes_old_records_but_never_a_blob_another_record_points_to(
    tmp_path: Path, s3_server: S3Server, photos: dict[str, Path]
) -> None:
    url = s3_server.new_url()
    a = machine(tmp_path, "a", s3_server, url)
    # The same pixels in another file: another key, the very same result bytes (one blob).
    twin_photo = tmp_path / "chelsea-again.png"
    Image.open(photos["chelsea"]).save(twin_photo, compress_level=1)
    old = a.run_sync("upscale", photos["chelsea"], scale=2)
    twin = a.run_sync("upscale", twin_photo, scale=2)
    assert old.key != twin.key and old.path == twin.path
    tier = a.shared.tier  # type: ignore[union-attr]
    records = {r.key: r for r in maintenance.list_records(tier).records}
    blob = records[old.key].blob

    dry = maintenance.clean(tier, max_age_days=0, now=records[twin.key].created, dry_run=True)
    assert [r.key for r in dry.records] == [old.key] and dry.blobs == 0
    assert tier.record(old.key) is not None  # a dry run removes nothing

    done = maintenance.clean(tier, max_age_days=0, now=records[twin.key].created)
    assert [r.key for r in done.records] == [old.key] and done.blobs == 0
    assert tier.record(old.key) is None
    assert tier.lookup(twin.key) is not None  # its blob was kept

    done = maintenance.clean(tier, everything=True)
    assert [r.key for r in done.records] == [twin.key] and done.blobs == 1
    assert not tier.filesystem().exists(tier.blob_path(blob))
    assert maintenance.list_records(tier).records == []


def test_push_uploads_what_was_made_while_the_tier_was_down(
    tmp_path: Path, fresh_s3_server: S3Server, photos: dict[str, Path]
) -> None:
    url = fresh_s3_server.new_url()
    a = machine(tmp_path, "a", fresh_s3_server, url)
    fresh_s3_server.deny = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        made = [a.run_sync("upscale", p, scale=2) for p in photos.values()]
    fresh_s3_server.deny = False
    a.shared.tier.forget_outage()  # type: ignore[union-attr]
    seen: list[str] = []

    def progress(items: object, total: int, what: str) -> object:
        seen.append(f"{what} {total}")
        return items

    pushed = maintenance.push(a.shared, progress)  # type: ignore[arg-type]
    assert sorted(pushed.moved) == sorted(r.key for r in made) and pushed.failed == 0
    assert seen == ["push 3"]
    assert maintenance.push(a.shared).moved == []  # type: ignore[arg-type]
    b = machine(tmp_path, "b", fresh_s3_server, url)
    assert b.run_sync("upscale", photos["rocket"], scale=2).tier == "shared"


def test_pull_copies_the_shared_entries_into_the_local_store(
    tmp_path: Path, s3_server: S3Server, photos: dict[str, Path]
) -> None:
    url = s3_server.new_url()
    a = machine(tmp_path, "a", s3_server, url)
    for p in photos.values():
        a.run_sync("upscale", p, scale=2)
    b = machine(tmp_path, "b", s3_server, url)
    pulled = maintenance.pull(b.shared)  # type: ignore[arg-type]
    assert len(pulled.moved) == 3 and pulled.present == 0
    before = len(s3_server.requests)
    for p in photos.values():
        assert b.run_sync("upscale", p, scale=2).tier == "local"
    assert len(s3_server.requests) == before  # all local now: no request at all
    assert b.backend.calls == 0  # type: ignore[attr-defined]
    assert maintenance.pull(b.shared).present == 3  # type: ignore[arg-type]


def test_verify_re_hashes_every_blob_and_names_the_missing_and_the_damaged(
    tmp_path: Path, s3_server: S3Server, photos: dict[str, Path]
) -> None:
    url = s3_server.new_url()
    a = machine(tmp_path, "a", s3_server, url)
    sound, tampered, gone = (a.run_sync("upscale", p, scale=2) for p in photos.values())
    tier = a.shared.tier  # type: ignore[union-attr]
    assert maintenance.verify(tier) == maintenance.SharedVerify(3, [], 0)

    client = s3_server.client()
    records = {r.key: r for r in maintenance.list_records(tier).records}
    bucket, name = tier.blob_path(records[tampered.key].blob).split("/", 1)
    data = tampered.path.read_bytes()
    client.put_object(Bucket=bucket, Key=name, Body=bytes([data[0] ^ 0xFF]) + data[1:])
    bucket, name = tier.blob_path(records[gone.key].blob).split("/", 1)
    client.delete_object(Bucket=bucket, Key=name)
    bucket, name = tier.record_path("3" * 64).split("/", 1)
    client.put_object(Bucket=bucket, Key=name, Body=b"{not json")

    checked = maintenance.verify(tier)

    assert checked.checked == 3 and checked.unreadable == 1
    assert {(r.key, why) for r, why in checked.damaged} == {
        (tampered.key, "result file content differs from its SHA-256"),
        (gone.key, "result file missing"),
    }
    # Report only: every record is still there, and the sound one still serves.
    assert {r.key for r in maintenance.list_records(tier).records} == set(records)
    assert tier.lookup(sound.key) is not None
