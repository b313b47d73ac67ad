"""Orphan result files: files under ``results/`` that no entry points to.

A ``put`` writes the result bytes first, then the sidecar, then the index row. A process that
dies between the bytes and the sidecar, or a put whose sidecar cannot be written (a full disk),
leaves a result file nothing leads to: it is never served, but it takes space for ever. ``clean``
removes such files once they are older than :data:`ORPHAN_GRACE_SECONDS`; ``verify`` counts them.

The grace is what keeps a put in progress safe: its bytes are on disk, young, a moment before
its sidecar is. It is longer than the ``tmp/`` sweep's (a writer silent for that long is taken
for dead there already), and every removal is decided again under the index's write lock (no
row uses the file, and it is still old), so a put of the same bytes either sees its file gone
and writes it again, or commits its row first and the file is kept.

Only regular files named like results, in their place (``results/ab/ab12…``), and lying inside
the store's root once symlinks are resolved, are ever candidates: a symlink, a file of another
name, or a ``results`` folder that is a symlink to somewhere else is left alone.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .files import STALE_TMP_SECONDS, StoreFiles
from .index import Index

__all__ = ["ORPHAN_GRACE_SECONDS", "Orphans", "count_orphans", "sweep_orphans"]

#: An orphan result file younger than this (by its mtime) may belong to a put in progress: kept.
#: An hour: twelve times the ``tmp/`` sweep's age, never less than it.
ORPHAN_GRACE_SECONDS = 12 * STALE_TMP_SECONDS


@dataclass(frozen=True)
class Orphans:
    """How many orphan result files there were (or went), and their bytes."""

    count: int = 0
    bytes: int = 0


def count_orphans(files: StoreFiles, index: Index, grace: float = ORPHAN_GRACE_SECONDS) -> Orphans:
    """The orphan result files older than ``grace`` seconds (nothing is removed)."""
    found = _find(files, index, time.time() - grace)
    return Orphans(len(found), sum(found.values()))


def sweep_orphans(files: StoreFiles, index: Index, grace: float = ORPHAN_GRACE_SECONDS) -> Orphans:
    """Remove the orphan result files older than ``grace`` seconds; what went."""
    cutoff = time.time() - grace
    found = _find(files, index, cutoff)
    removed: list[int] = []

    def unlink_if_still_orphaned(path: Path) -> None:
        # Called under the index's write lock, once no row uses the file: is it still old?
        size = _old_result_size(path, cutoff)
        if size is not None:
            files.unlink(path)
            removed.append(size)

    if found:
        index.unlink_unreferenced(found, unlink_if_still_orphaned)
    return Orphans(len(removed), sum(removed))


def _find(files: StoreFiles, index: Index, cutoff: float) -> dict[Path, int]:
    """Old result files no index row uses and no sidecar names (a sidecar without its row,
    left by a crash before the row was written, still owns its file): path -> size."""
    used = index.result_names()
    root = files.layout.root.resolve()
    found: dict[Path, int] = {}
    for path in _result_files(files, skip=used):
        size = _old_result_size(path, cutoff)
        if size is not None and path.resolve().is_relative_to(root):
            found[path] = size
    if found:  # rare: only then are the sidecars read
        owned = {entry.path.name for entry in files.sidecars()}
        found = {path: size for path, size in found.items() if path.name not in owned}
    return found


def _result_files(files: StoreFiles, skip: set[str]) -> Iterator[Path]:
    """Every file named like a result, in its place (``results/ab/ab12…``), but those
    named in ``skip``."""
    layout = files.layout
    try:
        folders = [f.path for f in os.scandir(layout.results) if f.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for folder in folders:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if name in skip:
                continue
            path = Path(folder, name)
            if layout.is_result_file(path):
                yield path


def _old_result_size(path: Path, cutoff: float) -> int | None:
    """The size of ``path`` if it is a regular file (not a symlink) older than ``cutoff``."""
    try:
        st = path.lstat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_mtime >= cutoff:
        return None
    return st.st_size
