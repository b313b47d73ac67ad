"""Looking after a shared tier: list, stats, find, clean, verify, and moving entries between
tiers.

These are the commands' engine (``%imgcache list --shared``, ``push``, ``pull``...), never the
lookup path: they list prefixes, which the hot path never does. Unlike lookups they raise on
failure (a :class:`SharedTierError` saying what went wrong), since a user asked for them.

``clean`` removes records first and blobs after, and only blobs no record points to once the
records are gone (listed afresh). A machine that writes a record for an old blob at the very
moment the blob is removed leaves a record whose lookup finds no bytes: that is a miss, and the
next fresh result of that key re-uploads the blob and rewrites the record (never a wrong hit).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import AmbiguousPrefix, NotInCache, SharedTierError
from ..store import Entry
from .link import SharedLink
from .records import SharedRecord, is_digest
from .tier import SharedTier

__all__ = [
    "SharedClean",
    "SharedListing",
    "SharedVerify",
    "Transfer",
    "clean",
    "find",
    "list_records",
    "pull",
    "push",
    "verify",
]

#: Blobs fetched at once by ``verify`` (in parallel; at most this many held in memory).
VERIFY_BATCH = 16

Progress = Callable[[Iterable[Any], int, str], Iterable[Any]]


@dataclass(frozen=True)
class SharedListing:
    """Every record in the tier (newest first) and the blobs' total size."""

    url: str
    records: list[SharedRecord]
    blob_count: int
    blob_bytes: int
    unreadable: int = 0

    @property
    def by_operation(self) -> dict[str, tuple[int, int]]:
        """operation -> (records, bytes of their results)."""
        out: dict[str, tuple[int, int]] = {}
        for r in self.records:
            count, size = out.get(r.operation, (0, 0))
            out[r.operation] = (count + 1, size + r.size)
        return out


@dataclass(frozen=True)
class SharedClean:
    """What a ``clean --shared`` removed (or, dry, would remove)."""

    records: list[SharedRecord]
    blobs: int
    freed_bytes: int
    dry_run: bool


@dataclass(frozen=True)
class SharedVerify:
    """What a ``verify --shared`` re-hashed: how many records, the records whose blob is
    missing or not the bytes it names (with the reason), and the records that cannot be read."""

    checked: int
    damaged: list[tuple[SharedRecord, str]]
    unreadable: int = 0


@dataclass(frozen=True)
class Transfer:
    """What a ``push`` or ``pull`` moved: how many entries, and how many were already there."""

    direction: str  # "push" | "pull"
    moved: list[str] = field(default_factory=list)
    present: int = 0
    failed: int = 0


def list_records(tier: SharedTier) -> SharedListing:
    """Read every record (in parallel) and size up the blobs."""
    fs = tier.filesystem()
    try:
        names = _files(fs, tier.location.path("records"))
        blobs = fs.find(tier.location.path("blobs"), detail=True)
        raw = fs.cat(list(names), on_error="omit", max_concurrency=1) if names else {}
    except FileNotFoundError:
        names, blobs, raw = {}, {}, {}
    except Exception as exc:
        raise SharedTierError(
            f"Cannot read the shared cache {tier.url}: {tier.explain(exc)}"
        ) from None
    records, unreadable = [], 0
    for path in names:
        key = path.rsplit("/", 1)[-1].removesuffix(".json")
        try:
            records.append(SharedRecord.from_json(raw[path], key))
        except (KeyError, ValueError):
            unreadable += 1
    records.sort(key=lambda r: r.created, reverse=True)
    size = sum(int(info.get("size") or 0) for info in blobs.values())
    return SharedListing(tier.url, records, len(blobs), size, unreadable)


def find(tier: SharedTier, prefix: str) -> SharedRecord:
    """The one record whose key starts with ``prefix``."""
    prefix = prefix.strip().lower()
    if not prefix or not is_digest(prefix.ljust(64, "0")):
        raise NotInCache(f"{prefix!r} is not a key prefix (hex digits).")
    fs = tier.filesystem()
    try:
        paths = fs.find(tier.location.path("records"), prefix=prefix)
    except FileNotFoundError:
        paths = []
    except Exception as exc:
        raise SharedTierError(
            f"Cannot read the shared cache {tier.url}: {tier.explain(exc)}"
        ) from None
    keys = [p.rsplit("/", 1)[-1].removesuffix(".json") for p in paths if p.endswith(".json")]
    if not keys:
        raise NotInCache(f"No entry in the shared cache {tier.url} has a key starting {prefix!r}.")
    if len(keys) > 1:
        raise AmbiguousPrefix(prefix, keys)
    record = tier.record(keys[0])
    if record is None:
        raise SharedTierError(f"The shared record for {keys[0][:12]} cannot be read now.")
    return record


def clean(
    tier: SharedTier,
    *,
    max_age_days: float | None = None,
    everything: bool = False,
    dry_run: bool = False,
    now: float | None = None,
) -> SharedClean:
    """Remove records made more than ``max_age_days`` ago (or all, ``everything``), then the
    blobs no remaining record points to."""
    if not everything and max_age_days is None:
        raise ValueError("say max_age_days or everything")
    cutoff = (time.time() if now is None else now) - (max_age_days or 0) * 86400
    listing = list_records(tier)
    doomed = [r for r in listing.records if everything or r.created < cutoff]
    kept_blobs = {r.blob for r in listing.records if r not in doomed}
    unshared = {r.blob: r.size for r in doomed if r.blob not in kept_blobs}
    if dry_run:
        return SharedClean(doomed, len(unshared), sum(unshared.values()), True)
    fs = tier.filesystem()
    try:
        if doomed:
            fs.rm([tier.record_path(r.key) for r in doomed])
        # Listed again: a record another machine wrote meanwhile keeps its blob.
        still = {r.blob for r in list_records(tier).records}
        gone = [d for d in unshared if d not in still]
        if gone:
            fs.rm([tier.blob_path(d) for d in gone])
    except Exception as exc:
        raise SharedTierError(
            f"Cannot clean the shared cache {tier.url}: {tier.explain(exc)}"
        ) from None
    return SharedClean(doomed, len(gone), sum(unshared[d] for d in gone), False)


def verify(tier: SharedTier, progress: Progress | None = None) -> SharedVerify:
    """Fetch and re-hash every record's blob (each blob once, :data:`VERIFY_BATCH` at a time):
    the records whose blob is missing, of another size than recorded, or whose bytes do not
    hash to its name. Removes nothing: each such record is a miss, never a wrong hit, and the
    next fresh result of its key writes its blob again."""
    listing = list_records(tier)
    fs = tier.filesystem()
    problems: dict[str, str | None] = {}  # blob -> what is wrong with it, None: sound
    sizes: dict[str, int] = {}
    damaged: list[tuple[SharedRecord, str]] = []
    batch: list[SharedRecord] = []

    def judge(records: list[SharedRecord]) -> None:
        wanted = sorted({r.blob for r in records} - problems.keys())
        paths = [tier.blob_path(digest) for digest in wanted]
        try:
            fetched = fs.cat(paths, on_error="return", max_concurrency=1) if paths else {}
        except Exception as exc:
            raise SharedTierError(
                f"Cannot read the shared cache {tier.url}: {tier.explain(exc)}"
            ) from None
        for digest, path in zip(wanted, paths, strict=True):
            data = fetched.get(path, FileNotFoundError(path))
            if isinstance(data, FileNotFoundError):
                problems[digest] = "result file missing"
            elif isinstance(data, BaseException):
                raise SharedTierError(
                    f"Cannot read the shared cache {tier.url}: {tier.explain(data)}"
                )
            else:
                sizes[digest] = len(data)
                sound = hashlib.sha256(data).hexdigest() == digest
                problems[digest] = None if sound else "result file content differs from its SHA-256"
        for record in records:
            problem = problems[record.blob]
            if problem is None and sizes[record.blob] != record.size:
                problem = (
                    f"result file is {sizes[record.blob]} bytes, the record says {record.size}"
                )
            if problem is not None:
                damaged.append((record, problem))

    for record in _progress(progress, listing.records, "verify"):
        batch.append(record)
        if len(batch) == VERIFY_BATCH:
            judge(batch)
            batch = []
    judge(batch)
    return SharedVerify(len(listing.records), damaged, listing.unreadable)


def push(link: SharedLink, progress: Progress | None = None) -> Transfer:
    """Upload the local entries the shared tier lacks (results made offline or while it was
    down). An entry's bytes are re-hashed first: a damaged local file is never uploaded."""
    have = {r.key for r in list_records(link.tier).records}
    local = link.store.entries()
    entries = [e for e in local if e.key not in have]
    moved, failed = [], 0
    for entry in _progress(progress, entries, "push"):
        data = _read(entry)
        if data is None or hashlib.sha256(data).hexdigest() != entry.result_sha256:
            failed += 1
            continue
        if link.publish(entry, data):
            moved.append(entry.key)
        else:
            failed += 1
    return Transfer("push", moved, present=len(local) - len(entries), failed=failed)


def pull(link: SharedLink, progress: Progress | None = None) -> Transfer:
    """Copy into the local store the shared entries it lacks (each hash-checked)."""
    records = list_records(link.tier).records
    missing = [r for r in records if link.store.get(r.key) is None]
    moved, failed = [], 0
    for record in _progress(progress, missing, "pull"):
        if link.fetch(record.key) is not None:
            moved.append(record.key)
        else:
            failed += 1
    return Transfer("pull", moved, present=len(records) - len(missing), failed=failed)


def _files(fs: Any, folder: str) -> dict[str, Any]:
    found: dict[str, Any] = fs.find(folder, detail=True)
    return {p: info for p, info in found.items() if p.endswith(".json")}


def _read(entry: Entry) -> bytes | None:
    try:
        return entry.path.read_bytes()
    except OSError:
        return None


def _progress(progress: Progress | None, items: list[Any], what: str) -> Iterable[Any]:
    return items if progress is None else progress(items, len(items), what)
