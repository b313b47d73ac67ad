"""The cache commands on the shared tier: ``list``/``inspect``/``stats``/``clean``/``verify``
with ``--shared``, and ``push``/``pull``. Called by :func:`nbimgprep.commands.execute`; each returns
a report, like the local commands, and raises :class:`~nbimgprep.errors.NbimgprepError` subclasses
for what a user can fix.

Where the tier is: the ``shared`` URL the face passes (``%config ImgCacheMagics.shared``), else
``$NBIMGPREP_CACHE_URL``; its credentials come from the usual places (see the README).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import NbimgprepError, SharedTierError, StoreNotFound
from ..reports import CacheInspection, CacheListing, CleanSummary, ImageGroup, Report
from ..reports.shared import OnShared, SharedStats, SharedVerifySummary, TransferSummary
from ..store import DEFAULT_MAX_AGE_DAYS, Entry, ResultStore, VerifyOutcome
from . import maintenance
from .link import CACHE_URL_ENV, SharedLink, configured_tier
from .records import SharedRecord
from .tier import SharedTier

__all__ = ["SHARED_COMMANDS", "execute_shared"]

#: Commands that only exist for the shared tier.
SHARED_COMMANDS = frozenset({"push", "pull"})


def execute_shared(
    args: argparse.Namespace,
    *,
    store: Callable[[bool], ResultStore],
    shared: str | None = None,
    environ: Mapping[str, str] | None = None,
    default_max_age_days: float = DEFAULT_MAX_AGE_DAYS,
    progress: bool = True,
) -> Report:
    """Run ``args.command`` against the shared tier."""
    env = os.environ if environ is None else environ
    url = shared or env.get(CACHE_URL_ENV, "")
    if not url:
        raise SharedTierError(
            f"No shared cache is set: export {CACHE_URL_ENV}=s3://bucket/prefix "
            '(in a notebook: %config ImgCacheMagics.shared = "s3://bucket/prefix").'
        )
    command = args.command
    tier = configured_tier(url, None, env)
    if command in SHARED_COMMANDS:
        # push reads the local store (it must exist); pull may make it.
        link = SharedLink(tier, store(command == "pull"))
        bar = _tqdm_progress if progress else None
        move = maintenance.push if command == "push" else maintenance.pull
        done = move(link, bar)
        return TransferSummary(command, tier.url, done.moved, done.present, done.failed)
    local = _existing(store)
    if command == "list":
        return OnShared(tier.url, _listing(tier, local, args.op, args.limit, args.sort))
    if command == "inspect":
        record = maintenance.find(tier, args.query)
        group = ImageGroup(record.image_hash, None, [_entry(record, tier, local)])
        return OnShared(tier.url, CacheInspection(args.query, [group], now=time.time()))
    if command == "stats":
        listing = maintenance.list_records(tier)
        return SharedStats(
            tier.url,
            len(listing.records),
            listing.blob_count,
            listing.blob_bytes,
            listing.by_operation,
            listing.unreadable,
        )
    if command == "clean":
        return OnShared(tier.url, _clean(tier, local, args, default_max_age_days))
    if command == "verify":
        checked = maintenance.verify(tier, _tqdm_progress if progress else None)
        damaged = [(_entry(r, tier, local), why) for r, why in checked.damaged]
        outcome = VerifyOutcome(checked=checked.checked, damaged=damaged, fixed=False)
        summary = SharedVerifySummary(outcome, now=time.time(), unreadable=checked.unreadable)
        return OnShared(tier.url, summary)
    raise NbimgprepError(f"{command} does not take --shared.")


def _existing(store: Callable[[bool], ResultStore]) -> ResultStore | None:
    """The local store if there is one (it only lends paths of local copies to the reports)."""
    try:
        return store(False)
    except StoreNotFound:
        return None


def _listing(
    tier: SharedTier, local: ResultStore | None, op: str | None, limit: int | None, sort: str
) -> CacheListing:
    records = maintenance.list_records(tier).records  # newest first
    if op is not None:
        records = [r for r in records if r.operation == op]
    if sort == "size":
        records.sort(key=lambda r: r.size, reverse=True)
    total = len(records)
    shown = records[:limit] if limit is not None else records
    # The shared tier keeps no hit counts: --sort hits is newest first there.
    entries = [_entry(r, tier, local) for r in shown]
    return CacheListing(entries, now=time.time(), total=total, sort=sort)


def _clean(
    tier: SharedTier, local: ResultStore | None, args: argparse.Namespace, default_days: float
) -> CleanSummary:
    if args.max_size is not None or args.missing:
        raise NbimgprepError(
            "clean --shared takes --max-age-days (and --dry-run, --yes) only: the shared "
            "cache keeps no hit times, so it cannot evict by size or recent use."
        )
    days = default_days if args.max_age_days is None else args.max_age_days
    criteria = f"made more than {days:g} days ago" if days else "everything (max age 0 days)"
    plan = maintenance.clean(tier, max_age_days=days, dry_run=True)
    entries = [_entry(r, tier, local) for r in plan.records]
    now = time.time()
    if args.dry_run or not args.yes or not plan.records:
        # A shared cache is the whole team's: nothing goes from it without --yes.
        refused = not args.dry_run and bool(plan.records)
        return CleanSummary(
            entries, plan.freed_bytes, criteria, now=now, dry_run=args.dry_run, refused=refused
        )
    done = maintenance.clean(tier, max_age_days=days)
    removed = [_entry(r, tier, local) for r in done.records]
    return CleanSummary(removed, done.freed_bytes, criteria, now)


def _entry(record: SharedRecord, tier: SharedTier, store: ResultStore | None) -> Entry:
    """A shared record in the shape the local reports show (its path: the blob's, or the
    local copy when this machine has one)."""
    local = store.get(record.key) if store is not None else None
    return record.to_entry(local.path if local is not None else Path(tier.blob_path(record.blob)))


def _tqdm_progress(items: Iterable[Any], total: int, what: str) -> Iterable[Any]:
    from tqdm.auto import tqdm

    bar: Iterable[Any] = tqdm(items, total=total, desc=what, unit="entry")
    return bar
