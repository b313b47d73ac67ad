"""The store's layout on disk: every folder and file name under a store root, written once.

Under the store root (``NBIMGPREP_CACHE_DIR``, default ``./.cache/nbimgprep``)::

    results/ab/ab12...ef.png    result bytes, named by their own SHA-256
    entries/9f/9f3c...01.json   one JSON sidecar per cache entry: the source of truth
    index.sqlite                SQLite (WAL) index over the sidecars, plus hit counters and
                                the file-hash memo; rebuildable from the sidecars
    locks/9f3c...01.lock        per-key lock files (one backend call per key across processes)
    journal/9f3c...01.json      remote requests submitted and not yet stored (see
                                :mod:`nbimgprep.journal`)
    tmp/                        files being written, renamed into place when complete

and the modes its folders and files are made with: private (0700, 0600), unless the root was
made group-accessible on purpose, in which case the group gets the same access (see the README).
Everything that names a part of a store, or makes a folder or file in it, asks this module.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import StoreError
from .entry import EXTENSIONS

__all__ = ["Modes", "StoreLayout", "create_file", "create_folder", "refuse_a_file"]

#: A result file's name: the SHA-256 of its bytes and the suffix of its content type.
RESULT_NAME = re.compile(
    "[0-9a-f]{64}(?:" + "|".join(re.escape(suffix) for suffix in EXTENSIONS.values()) + ")"
)


@dataclass(frozen=True)
class Modes:
    """The modes a store's folders and files are made with, from its root's group bits."""

    folder: int = 0o700
    file: int = 0o600

    @classmethod
    def of(cls, root: Path) -> Modes:
        """Private (0700, 0600), or with the group's access to ``root`` (its read, write and
        search bits) given to what is made inside. Raises OSError if ``root`` is missing."""
        group = stat.S_IMODE(root.stat().st_mode) & 0o070
        return cls(0o700 | group, 0o600 | (group & 0o060))


@dataclass(frozen=True)
class StoreLayout:
    """Where each part of the store under ``root`` lives."""

    root: Path

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def entries(self) -> Path:
        return self.root / "entries"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    @property
    def journal(self) -> Path:
        return self.root / "journal"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def index(self) -> Path:
        return self.root / "index.sqlite"

    @property
    def folders(self) -> tuple[Path, ...]:
        """The folders a writable store makes when it is opened."""
        return (self.results, self.entries, self.locks, self.journal, self.tmp)

    def sidecar_path(self, key: str) -> Path:
        return self.entries / key[:2] / f"{key}.json"

    def lock_path(self, key: str) -> Path:
        return self.locks / f"{key}.lock"

    def journal_path(self, key: str) -> Path:
        return self.journal / f"{Path(key).name}.json"  # a key is a hex digest; never a path

    def holds_store(self) -> bool:
        """Whether ``root`` holds a store: its index, or the sidecars the index is rebuilt from."""
        return self.index.exists() or self.entries.is_dir()

    def is_result_file(self, path: Path) -> bool:
        """Whether ``path`` is named like a result file in its place, ``results/ab/ab12…``."""
        name = path.name
        return (
            RESULT_NAME.fullmatch(name) is not None
            and path.parent.name == name[:2]
            and path.parent.parent == self.results
        )


def refuse_a_file(root: Path, advice: str) -> None:
    """Raise a :class:`StoreError` naming ``root`` if it is a file (a store is a folder)."""
    if root.exists() and not root.is_dir():
        raise StoreError(f"The cache directory {root} is a file, not a folder. {advice}")


def create_file(path: Path, mode: int, flags: int = os.O_WRONLY) -> int | None:
    """Create ``path`` with ``mode`` (past the umask) and return its descriptor, or None if
    it already exists (it is left as it is)."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return None
    try:
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def create_folder(path: Path, mode: int) -> None:
    """Create the folder ``path`` with ``mode`` (past the umask; a setgid bit it inherits is
    kept), if it is missing."""
    if path.is_dir():
        return
    try:
        path.mkdir(mode=mode)
    except FileExistsError:
        return
    path.chmod(mode | (stat.S_IMODE(path.stat().st_mode) & stat.S_ISGID))
