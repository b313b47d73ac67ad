"""The store's files: where each one lives, atomic writes, sidecars, and the one unlink.

Layout under the store root::

    results/ab/ab12...ef.png    result bytes, named by their own SHA-256
    entries/9f/9f3c...01.json   one JSON sidecar per cache entry: the source of truth
    locks/                      per-key lock files (one backend call per key across processes)
    tmp/                        files being written, renamed into place when complete

Every write goes to ``tmp/``, is fsynced and renamed into place, so a reader sees the old
file or the new one. Nothing outside the root is ever deleted: :meth:`StoreFiles.unlink`
refuses it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from filelock import FileLock
from filelock import Timeout as LockTimeout

from ..errors import StoreError
from ..images import sha256_stream
from .entry import Entry, from_sidecar, to_sidecar

__all__ = ["CACHE_DIR_ENV", "DEFAULT_CACHE_FOLDER", "StoreFiles", "default_cache_dir"]

#: The environment variable that moves the store.
CACHE_DIR_ENV = "NBIMGPREP_CACHE_DIR"
#: The store's folder under the working directory when the variable is not set.
DEFAULT_CACHE_FOLDER = Path(".cache", "nbimgprep")

_FOLDERS = ("results", "entries", "locks", "tmp")


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``NBIMGPREP_CACHE_DIR`` if set, else ``.cache/nbimgprep`` under the working directory."""
    env = os.environ if environ is None else environ
    configured = env.get(CACHE_DIR_ENV)
    return Path(configured).expanduser() if configured else Path.cwd() / DEFAULT_CACHE_FOLDER


class StoreFiles:
    """The files under one store root (the index is :class:`~nbimgprep.store.index.Index`)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def create(self) -> None:
        """Make the store's folders, or say clearly why they cannot be made."""
        try:
            for sub in _FOLDERS:
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"Cannot create the cache directory {self.root} ({exc.strerror}). "
                f"Set {CACHE_DIR_ENV} or pass cache_dir= to a writable folder."
            ) from None

    # -- where things live -------------------------------------------------------------------

    def result_path(self, name: str) -> Path:
        return self.root / "results" / name[:2] / name

    def sidecar_path(self, key: str) -> Path:
        return self.root / "entries" / key[:2] / f"{key}.json"

    def lock_path(self, key: str) -> Path:
        return self.root / "locks" / f"{key}.lock"

    # -- writing -------------------------------------------------------------------------------

    def write_atomic(self, target: Path, data: bytes) -> None:
        """Write ``data`` to ``target`` through ``tmp/``: fsynced, then renamed into place."""
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.root / "tmp", prefix=target.name[:16])
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def write_result(self, entry: Entry, data: bytes) -> None:
        """The result bytes, unless an intact file of that content is already there."""
        if not has_size(entry.path, entry.size):
            self.write_atomic(entry.path, data)

    def write_sidecar(self, entry: Entry) -> None:
        text = json.dumps(to_sidecar(entry), sort_keys=True, indent=1)
        self.write_atomic(self.sidecar_path(entry.key), text.encode())

    # -- reading -------------------------------------------------------------------------------

    def read_sidecar(self, path: Path) -> Entry | None:
        """The entry a sidecar file describes, or None if it is unreadable or not a sidecar."""
        try:
            data = json.loads(path.read_text())
            return from_sidecar(data, self.result_path)
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return None

    def sidecar_of(self, key: str) -> Entry | None:
        """The entry whose sidecar is on disk for ``key``, if it is one."""
        path = self.sidecar_path(key)
        entry = self.read_sidecar(path) if path.exists() else None
        return entry if entry is not None and entry.key == key else None

    def sidecars(self) -> Iterator[Entry]:
        """Every readable sidecar's entry (the truth the index is rebuilt from)."""
        for path in (self.root / "entries").glob("*/*.json"):
            entry = self.read_sidecar(path)
            if entry is not None:
                yield entry

    # -- removing ------------------------------------------------------------------------------

    def unlink(self, path: Path) -> None:
        """Delete ``path`` only if it lies inside the store root: the store's one unlink."""
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise StoreError(f"Refusing to delete {path}: it is outside the store at {self.root}.")
        resolved.unlink(missing_ok=True)

    def remove_idle_lock(self, key: str) -> None:
        """Remove a key's lock file, but only while holding it: a lock someone holds stays."""
        path = self.lock_path(key)
        if not path.exists():
            return
        lock = FileLock(str(path), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except (LockTimeout, OSError):
            return
        try:
            self.unlink(path)
        finally:
            lock.release()


def has_size(path: Path, size: int) -> bool:
    """Whether ``path`` is a file of ``size`` bytes."""
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def damage(entry: Entry) -> str | None:
    """Why ``entry``'s result file is not the file that was stored (re-hashed), or None."""
    try:
        with entry.path.open("rb") as f:
            digest = sha256_stream(f)
    except FileNotFoundError:
        return "result file missing"
    except OSError as exc:
        return f"result file unreadable ({exc.strerror})"
    if digest != entry.result_sha256:
        return "result file content differs from what was stored"
    return None
