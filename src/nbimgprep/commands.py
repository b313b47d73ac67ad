"""The cache commands: one function per subcommand, shared by ``%imgcache`` and ``nbimgprep``.

Each function takes the store (or, for ``run``, a processor) and the options as keywords and
returns a report from :mod:`nbimgprep.reports`. They never print and never exit: the magic
displays the report, the command line prints it and exits with ``report.exit_code``.
Errors are :class:`~nbimgprep.errors.NbimgprepError`; each face decides how to show them.
:func:`execute` maps a parsed command line (:mod:`nbimgprep.arguments`) onto these functions,
and :func:`open_store` opens the store they work on: only ``import`` (and ``run``, through its
processor) may create one; the others say there is none rather than leave an empty store behind.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ImageError, NbimgprepError, NotInCache, StoreError
from .formatting import format_size
from .images import ImageRef
from .reports import (
    CacheInspection,
    CacheListing,
    CacheStats,
    CleanSummary,
    ExportSummary,
    ImageGroup,
    ImportSummary,
    RemovalSummary,
    Report,
    RunItem,
    RunPlan,
    RunSummary,
    VerifySummary,
)
from .store import DEFAULT_MAX_AGE_DAYS
from .store_paths import open_store, os_reason, user_path

if TYPE_CHECKING:
    from .batch_results import BatchItem
    from .processor import Processor
    from .store import Entry, ResultStore, SortKey

__all__ = [
    "CLEAN_CONFIRM_LIMIT",
    "clean",
    "execute",
    "export",
    "import_legacy",
    "inspect",
    "list_entries",
    "open_store",
    "remove",
    "run",
    "stats",
    "verify",
]

#: A clean that would remove more entries than this needs ``--yes``.
CLEAN_CONFIRM_LIMIT = 10
#: The subcommands that may create a store where there is none (``run`` makes its own).
_CREATES_STORE = frozenset({"import"})


def list_entries(
    store: ResultStore,
    *,
    op: str | None = None,
    limit: int | None = None,
    sort: SortKey = "age",
    tag: str | None = None,
    now: float | None = None,
) -> CacheListing:
    """``list``: one row per entry, newest first (or most hit, or largest); only those of
    operation ``op`` or carrying ``tag`` when given."""
    entries = store.entries(op=op, limit=limit, sort=sort, tag=tag)
    total: int | None = None
    if limit is not None and len(entries) == limit:
        # "20 of 10000": a COUNT is cheap; per-operation counts need the stats query.
        if tag is not None:
            total = len(store.entries(op=op, tag=tag))
        else:
            total = _count(store.stats().by_operation.get(op)) if op else len(store)
    elif not entries and (op is not None or tag is not None):
        total = len(store)  # "No entries match.", not "The cache is empty."
    return CacheListing(entries, now=_now(now), total=total, sort=sort)


def _count(per_op: Any) -> int | None:
    value = getattr(per_op, "entries", None)
    if value is None and isinstance(per_op, dict):
        value = per_op.get("entries")
    if value is None and isinstance(per_op, int):
        value = per_op
    return int(value) if value is not None else None


def inspect(store: ResultStore, query: str, *, now: float | None = None) -> CacheInspection:
    """``inspect``: every entry of the image named by a key prefix, hash prefix or file."""
    entries = _find(store, query)
    query_path = Path(query).expanduser()
    given = query_path if query_path.is_file() else None  # _find read it: the OS accepts it
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(entry.image_hash, []).append(entry)
    return CacheInspection(
        query=query,
        groups=[
            ImageGroup(image_hash, _input_on_disk(store, image_hash, group, given), group)
            for image_hash, group in groups.items()
        ],
        now=_now(now),
    )


def _input_on_disk(
    store: ResultStore, image_hash: str, entries: Iterable[Entry], given: Path | None
) -> Path | None:
    """The input file of these entries if it is still on disk, unchanged (by its hash)."""
    candidates = [given] if given else []
    candidates += [Path(e.source) for e in entries if e.source]
    for path in dict.fromkeys(candidates):
        try:
            if path.is_file() and ImageRef(path, memo=store).sha256 == image_hash:
                return path
        except (ImageError, OSError):
            continue
    return None


def _find(store: ResultStore, query: str) -> list[Entry]:
    """``store.find``, with a query the OS refuses as a path (too long, say) named as such."""
    try:
        return store.find(query)
    except StoreError:
        raise
    except OSError as exc:
        raise NotInCache(
            f"{query!r} is not a cache key, an image hash or a path of an image file "
            f"({os_reason(exc)})."
        ) from None


def stats(store: ResultStore) -> CacheStats:
    """``stats``: entries, bytes, hits, misses, hit rate, backend seconds saved, per operation."""
    return CacheStats(store.stats(), root=store.root)


def clean(
    store: ResultStore,
    *,
    max_age_days: float | None = None,
    max_size: int | None = None,
    missing: bool = False,
    dry_run: bool = False,
    yes: bool = False,
    default_max_age_days: float = DEFAULT_MAX_AGE_DAYS,
    now: float | None = None,
) -> CleanSummary:
    """``clean``: remove entries any criterion selects; with none given, unused for
    ``default_max_age_days`` (:data:`DEFAULT_MAX_AGE_DAYS`).

    A clean that would remove more than :data:`CLEAN_CONFIRM_LIMIT` entries removes nothing
    unless ``yes``: it returns the list, refused, so a stray ``--max-age-days=0`` in a
    notebook cannot empty a shared cache. There is no prompt (it must work with no terminal).
    """
    if max_age_days is None and max_size is None and not missing:
        max_age_days = default_max_age_days
    criteria = _criteria(max_age_days, max_size, missing)
    plan = store.clean(max_age_days=max_age_days, max_bytes=max_size, missing=missing, dry_run=True)
    refused = not dry_run and not yes and len(plan.removed) > CLEAN_CONFIRM_LIMIT
    if dry_run or refused or not (plan.removed or plan.orphans):
        return CleanSummary(
            list(plan.removed),
            plan.freed_bytes,
            criteria,
            now=_now(now),
            dry_run=dry_run,
            refused=refused,
            confirm_limit=CLEAN_CONFIRM_LIMIT,
            orphans=plan.orphans,
            orphan_bytes=plan.orphan_bytes,
        )
    done = store.clean(
        max_age_days=max_age_days, max_bytes=max_size, missing=missing, dry_run=False
    )
    return CleanSummary(
        list(done.removed),
        done.freed_bytes,
        criteria,
        now=_now(now),
        orphans=done.orphans,
        orphan_bytes=done.orphan_bytes,
    )


def _criteria(max_age_days: float | None, max_size: int | None, missing: bool) -> str:
    said = []
    if max_age_days == 0:
        said.append("everything (max age 0 days)")
    elif max_age_days is not None:
        said.append(f"not used for {max_age_days:g} days")
    if max_size is not None:
        said.append(f"beyond {format_size(max_size)}, least recently hit first")
    if missing:
        said.append("result file missing")
    return "; ".join(said)


def remove(store: ResultStore, query: str, *, now: float | None = None) -> RemovalSummary:
    """``rm``: delete the entry with this key, or every entry of the image with this hash."""
    removed = [e for e in (store.delete(entry.key) for entry in _find(store, query)) if e]
    return RemovalSummary(query, removed, now=_now(now))


def verify(store: ResultStore, *, now: float | None = None) -> VerifySummary:
    """``verify``: re-hash every result; missing or corrupt ones are dropped. Orphan result
    files (no entry points to them) are counted, and left to ``clean``."""
    return VerifySummary(store.verify(fix=True), now=_now(now))


def export(store: ResultStore, path: str | Path, *, format: str = "legacy") -> ExportSummary:
    """``export``: the original app's JSON cache file, with the entries it can state."""
    if format != "legacy":
        raise NbimgprepError(f"Unknown export format {format!r}; the only format is 'legacy'.")
    target = user_path(path, "export path")
    try:
        if target.is_dir():
            raise StoreError(
                f"{target} is a folder; give the path of the JSON file to write, e.g. "
                f"{target / 'image-processing-cache.json'}."
            )
        if target.resolve().is_relative_to(store.root.resolve()):
            raise StoreError(
                f"{target} is inside the store ({store.root}); write the export somewhere else."
            )
        done = store.export_legacy_json(target)
    except StoreError:
        raise
    except OSError as exc:
        raise StoreError(
            f"Cannot write {target} ({os_reason(exc)}); choose a writable place for it."
        ) from None
    return ExportSummary(target, done.exported, format, left_out=done.left_out, root=done.root)


def import_legacy(
    store: ResultStore, path: str | Path, *, root: str | Path | None = None
) -> ImportSummary:
    """``import``: copy the results of an original-app cache file into the store."""
    source, root_path = _import_paths(path, root)
    try:
        outcome = store.import_legacy_json(source, root=root_path)
    except StoreError:
        raise
    except OSError as exc:
        raise StoreError(f"Cannot import {source} ({os_reason(exc)}).") from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise StoreError(
            f"{source}: not a cache file of the original app ({exc}); it should be "
            '{image_hash: {"bgRemoved": path, "upscaled": path, "faceDetailed": path, '
            '"timestamp": ms}}.'
        ) from None
    return ImportSummary(source, outcome)


def _import_paths(path: str | Path, root: str | Path | None) -> tuple[Path, Path | None]:
    """The legacy file and ``--root`` as typed, checked: the file exists, the root is a folder."""
    source = user_path(path, "legacy cache file")
    root_path = user_path(root, "--root folder") if root is not None else None
    try:
        if source.is_dir():
            raise StoreError(f"{source} is a folder; give the path of the JSON cache file.")
        if not source.is_file():
            raise StoreError(f"{source}: no such file; give the path of the JSON cache file.")
        if root_path is not None and not root_path.is_dir():
            raise StoreError(
                f"--root {root_path}: no such folder; give the folder the paths live in."
            )
    except OSError as exc:
        if isinstance(exc, StoreError):
            raise
        raise StoreError(f"Cannot import {source} ({os_reason(exc)}).") from None
    return source, root_path


def run(
    processor: Processor,
    operation: str,
    images: Iterable[str],
    *,
    scale: int | None = None,
    refresh: bool = False,
    concurrency: int | None = None,
    max_fresh: int | None = None,
    dry_run: bool = False,
    progress: bool = True,
    on_item: Callable[[RunItem], None] | None = None,
) -> RunSummary | RunPlan:
    """``run``: the images (files, folders, globs) as one batch through the cache; a failure
    is recorded and the rest go on. ``dry_run``: the plan only, nothing called."""
    params: dict[str, Any] = {} if scale is None else {"scale": scale}
    sources = list(images)
    if dry_run:
        return RunPlan(operation, processor.plan(operation, sources, **params))

    def tell(item: BatchItem) -> None:
        if on_item is not None:
            on_item(_run_item(item))

    batch = processor.run_many_sync(
        operation,
        sources,
        refresh=refresh,
        concurrency=concurrency,
        max_fresh=max_fresh,
        progress=progress,
        on_item=tell,
        **params,
    )
    return RunSummary(operation, [_run_item(item) for item in batch.items])


def _run_item(item: BatchItem) -> RunItem:
    if item.result is not None:
        return RunItem(item.label, result=item.result)
    return RunItem(item.label, error=str(item.error))


def execute(
    args: argparse.Namespace,
    *,
    store: Callable[[bool], ResultStore],
    processor: Callable[[], Processor],
    default_max_age_days: float = DEFAULT_MAX_AGE_DAYS,
    on_item: Callable[[RunItem], None] | None = None,
    shared: str | None = None,
) -> Report:
    """Call the function ``args.command`` names with the parsed options.

    ``store`` and ``processor`` are factories, so a cache command never builds a processor
    (which picks a backend) and ``run`` opens no second store. ``store(create)`` is told
    whether the command may create a store (only ``import`` may; see :func:`open_store`).
    ``--shared``, ``push`` and ``pull`` go to the shared tier at ``shared`` (default
    ``$NBIMGPREP_CACHE_URL``): see :mod:`nbimgprep.shared.commands`.
    """
    command = args.command
    if getattr(args, "shared", False) or command in ("push", "pull"):
        from .shared.commands import execute_shared

        return execute_shared(
            args, store=store, shared=shared, default_max_age_days=default_max_age_days
        )
    if command == "run":
        return run(
            processor(),
            args.operation,
            args.images,
            scale=args.scale,
            refresh=args.refresh,
            concurrency=args.concurrency,
            max_fresh=args.max_fresh,
            dry_run=args.dry_run,
            on_item=on_item,
        )
    if command == "import":  # a store is made for an import only once its file is there
        _import_paths(args.path, args.root)
    s = store(command in _CREATES_STORE)
    if command == "list":
        return list_entries(s, op=args.op, limit=args.limit, sort=args.sort, tag=args.tag)
    if command == "inspect":
        return inspect(s, args.query)
    if command == "stats":
        return stats(s)
    if command == "clean":
        return clean(
            s,
            max_age_days=args.max_age_days,
            max_size=args.max_size,
            missing=args.missing,
            dry_run=args.dry_run,
            yes=args.yes,
            default_max_age_days=default_max_age_days,
        )
    if command == "rm":
        return remove(s, args.query)
    if command == "verify":
        return verify(s)
    if command == "export":
        return export(s, args.path, format=args.format)
    if command == "import":
        return import_legacy(s, args.path, root=args.root)
    raise NbimgprepError(f"Unknown command {command!r}.")


def _now(now: float | None) -> float:
    return time.time() if now is None else now
