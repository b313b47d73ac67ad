"""SharedTier alone, against a real S3 API server on 127.0.0.1 (tests/s3server.py).

What a team relies on: a result put by one machine is read back whole by another; a miss costs
one request and a hit two, with nothing listed; two writers of one key cannot corrupt it; bytes
that do not match their SHA-256 are never served; a dead, denied or slow server degrades to
"no shared result", with one warning per process.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterator

import pytest

from nbimgprep import SharedTierError
from nbimgprep.shared import SharedRecord, SharedTier
from s3server import CREDENTIALS, S3Server, fresh_s3_server, s3_server  # noqa: F401  (fixtures)


def record_for(data: bytes, key: str | None = None) -> SharedRecord:
    digest = hashlib.sha256(data).hexdigest()
    return SharedRecord(
        key=key or hashlib.sha256(b"key:" + data).hexdigest(),
        blob=digest,
        size=len(data),
        image_hash="ab" * 32,
        operation="upscale",
        endpoint="fal-ai/esrgan",
        params={"scale": 2},
        backend="fal",
        width=4,
        height=4,
        content_type="image/png",
        created=1700000000.0,
    )


SLOW_MACHINE = 20.0  # a busy test machine must not look like a slow server


@pytest.fixture
def tier(s3_server: S3Server) -> SharedTier:
    return SharedTier(s3_server.new_url(), options=s3_server.options(), timeout=SLOW_MACHINE)


@pytest.fixture
def shared_warnings() -> Iterator[list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def test_a_put_result_comes_back_whole_from_another_tier_object(
    s3_server: S3Server, tier: SharedTier
) -> None:
    data = os.urandom(5000)
    record = record_for(data)
    assert tier.put(record, data)
    other_machine = SharedTier(tier.url, options=s3_server.options(), timeout=SLOW_MACHINE)
    hit = other_machine.lookup(record.key)
    assert hit is not None
    assert hit.data == data
    assert hit.record == record


def test_a_miss_costs_one_request_and_a_hit_two_with_no_listing(
    s3_server: S3Server, tier: SharedTier
) -> None:
    data = os.urandom(1000)
    record = record_for(data)
    tier.put(record, data)
    before = len(s3_server.requests)
    assert tier.lookup("0" * 64) is None
    assert s3_server.requests[before:] == [("GET", f"/{tier.record_path('0' * 64)}")]
    before = len(s3_server.requests)
    assert tier.lookup(record.key) is not None
    assert [m for m, _ in s3_server.requests[before:]] == ["GET", "GET"]
    assert not any("list-type" in p or p.endswith("/") for _, p in s3_server.requests[before:])


def test_a_record_written_by_another_machine_is_seen_at_once(
    s3_server: S3Server, tier: SharedTier
) -> None:
    data = os.urandom(100)
    record = record_for(data)
    assert tier.lookup(record.key) is None  # a miss first: nothing may remember it
    SharedTier(tier.url, options=s3_server.options(), timeout=SLOW_MACHINE).put(record, data)
    assert tier.lookup(record.key) is not None


def test_blob_before_record_and_records_name_their_blob_by_sha256(
    s3_server: S3Server, tier: SharedTier
) -> None:
    data = os.urandom(100)
    record = record_for(data)
    before = len(s3_server.requests)
    tier.put(record, data)
    puts = [p for m, p in s3_server.requests[before:] if m == "PUT"]
    assert puts == [f"/{tier.blob_path(record.blob)}", f"/{tier.record_path(record.key)}"]
    assert tier.blob_path(record.blob).endswith(f"/blobs/{record.blob[:2]}/{record.blob}")


def test_a_second_writer_of_the_same_key_keeps_the_first_intact_record(
    s3_server: S3Server, tier: SharedTier
) -> None:
    first, second = os.urandom(300), os.urandom(400)
    key = "1" * 64
    assert tier.put(record_for(first, key), first)
    rival = SharedTier(tier.url, options=s3_server.options(), timeout=SLOW_MACHINE)
    assert rival.put(record_for(second, key), second)  # "already exists" is success
    hit = tier.lookup(key)
    assert hit is not None and hit.data == first
    assert rival.lookup(key) is not None


def test_a_refreshed_result_replaces_the_record(tier: SharedTier) -> None:
    first, second = os.urandom(300), os.urandom(400)
    key = "2" * 64
    tier.put(record_for(first, key), first)
    tier.put(record_for(second, key), second, replace=True)
    hit = tier.lookup(key)
    assert hit is not None and hit.data == second


def test_a_tampered_blob_is_not_served_and_is_repaired_by_the_next_put(
    s3_server: S3Server, tier: SharedTier, shared_warnings: list[warnings.WarningMessage]
) -> None:
    data = os.urandom(2000)
    record = record_for(data)
    tier.put(record, data)
    bucket, name = tier.blob_path(record.blob).split("/", 1)
    tampered = bytes([data[0] ^ 0xFF]) + data[1:]  # same size: only the hash can tell
    s3_server.client().put_object(Bucket=bucket, Key=name, Body=tampered)
    assert tier.lookup(record.key) is None
    assert any("damaged" in str(w.message) for w in shared_warnings)
    assert tier.put(record, data)
    hit = tier.lookup(record.key)
    assert hit is not None and hit.data == data


def test_a_record_for_another_key_or_garbage_is_a_miss(
    s3_server: S3Server, tier: SharedTier, shared_warnings: list[warnings.WarningMessage]
) -> None:
    data = os.urandom(100)
    record = record_for(data)
    tier.put(record, data)
    bucket, name = tier.record_path("3" * 64).split("/", 1)
    client = s3_server.client()
    client.put_object(Bucket=bucket, Key=name, Body=record.to_json())  # copied under key 333...
    assert tier.lookup("3" * 64) is None
    client.put_object(Bucket=bucket, Key=name, Body=b"{not json")
    assert tier.lookup("3" * 64) is None
    assert len([w for w in shared_warnings if "unreadable record" in str(w.message)]) == 2


def test_a_30_mb_result_round_trips_intact(
    s3_server: S3Server, tier: SharedTier, shared_warnings: list[warnings.WarningMessage]
) -> None:
    data = os.urandom(30 * 2**20)
    record = record_for(data)
    assert tier.put(record, data), [str(w.message) for w in shared_warnings]
    hit = SharedTier(tier.url, options=s3_server.options(), timeout=SLOW_MACHINE).lookup(record.key)
    assert hit is not None, [str(w.message) for w in shared_warnings]
    assert hashlib.sha256(hit.data).hexdigest() == record.blob


def test_a_stopped_server_means_no_shared_result_and_one_warning_for_every_tier(
    fresh_s3_server: S3Server, shared_warnings: list[warnings.WarningMessage]
) -> None:
    url = fresh_s3_server.new_url()
    data = os.urandom(100)
    record = record_for(data)
    # retry_after=0: every call tries the dead server again, and still only one warning.
    tiers = [
        SharedTier(url, options=fresh_s3_server.options(), retry_after=0, timeout=SLOW_MACHINE)
        for _ in range(3)
    ]
    tiers[0].put(record, data)
    fresh_s3_server.stop()
    for tier in tiers * 3:
        assert tier.lookup(record.key) is None
        assert tier.put(record, data) is False
    unusable = [w for w in shared_warnings if "not usable" in str(w.message)]
    assert len(unusable) == 1
    assert url in str(unusable[0].message)


def test_a_slow_server_is_cut_off_at_the_timeout(
    fresh_s3_server: S3Server, shared_warnings: list[warnings.WarningMessage]
) -> None:
    tier = SharedTier(fresh_s3_server.new_url(), options=fresh_s3_server.options(), timeout=0.5)
    fresh_s3_server.delay = 3.0
    assert tier.lookup("4" * 64) is None
    assert any("no answer within 0.5 s" in str(w.message) for w in shared_warnings)


def test_a_down_tier_is_tried_again_after_retry_after(
    fresh_s3_server: S3Server, shared_warnings: list[warnings.WarningMessage]
) -> None:
    now = [0.0]
    tier = SharedTier(
        fresh_s3_server.new_url(),
        options=fresh_s3_server.options(),
        retry_after=30,
        timeout=SLOW_MACHINE,
        clock=lambda: now[0],
    )
    data = os.urandom(100)
    record = record_for(data)
    tier.put(record, data)
    fresh_s3_server.deny = True
    assert tier.lookup(record.key) is None
    fresh_s3_server.deny = False
    before = len(fresh_s3_server.requests)
    assert tier.lookup(record.key) is None  # within the quiet period: not even asked
    assert len(fresh_s3_server.requests) == before
    now[0] = 31.0
    assert tier.lookup(record.key) is not None
    assert len([w for w in shared_warnings if "not usable" in str(w.message)]) == 1


def test_no_secret_in_repr_records_or_warnings(
    fresh_s3_server: S3Server, shared_warnings: list[warnings.WarningMessage]
) -> None:
    tier = SharedTier(
        fresh_s3_server.new_url(), options=fresh_s3_server.options(), timeout=SLOW_MACHINE
    )
    data = os.urandom(100)
    record = record_for(data)
    tier.put(record, data)
    fresh_s3_server.deny = True
    tier.lookup(record.key)
    secret = CREDENTIALS["secret"]
    shown = [repr(tier), str(tier.__dict__), record.to_json().decode()]
    shown += [str(w.message) for w in shared_warnings]
    assert shared_warnings and not any(secret in text for text in shown)


@pytest.mark.parametrize(
    "url",
    ["team-bucket/prefix", "https://example.com/x", "s3://", "s3://AKIA:Zq9sentinel@bucket/p"],
)
def test_a_url_that_is_not_s3_bucket_prefix_is_a_clear_error(url: str) -> None:
    with pytest.raises(SharedTierError, match="s3://") as caught:
        SharedTier(url)
    assert "Zq9sentinel" not in str(caught.value)
