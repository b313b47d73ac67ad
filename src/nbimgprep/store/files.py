"""The store's files: atomic writes, sidecars, and the one unlink (where each file lives,
and the modes they are made with, are :mod:`.layout`'s).

Every write goes to ``tmp/``, is fsynced and renamed into place, so a reader sees the old
file or the new one; what a killed writer leaves in ``tmp/`` is removed at a later open once
it is a few minutes old. Nothing outside the root is ever deleted: :meth:`StoreFiles.unlink`
refuses it. The store is private: folders 0700, files 0600, unless its root folder was made
group-accessible on purpose, in which case the group gets the same access to what is made
inside (see the README).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock
from filelock import Timeout as LockTimeout

from ..errors import StoreError
from ..hashing import sha256_stream
from .entry import Entry, from_sidecar, to_sidecar
from .layout import Modes, StoreLayout, create_file, create_folder, refuse_a_file

__all__ = ["CACHE_DIR_ENV", "DEFAULT_CACHE_FOLDER", "StoreFiles", "default_cache_dir"]

#: The environment variable that moves the store.
CACHE_DIR_ENV = "NBIMGPREP_CACHE_DIR"
#: The store's folder under the working directory when the variable is not set.
DEFAULT_CACHE_FOLDER = Path(".cache", "nbimgprep")

#: A file in ``tmp/`` older than this was left by a writer that died: removed at open.
STALE_TMP_SECONDS = 300.0


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``NBIMGPREP_CACHE_DIR`` if set, else ``.cache/nbimgprep`` under the working directory."""
    env = os.environ if environ is None else environ
    configured = env.get(CACHE_DIR_ENV)
    return Path(configured).expanduser() if configured else Path.cwd() / DEFAULT_CACHE_FOLDER


@dataclass(frozen=True)
class ResultStamp:
    """A result file's stat signature, recorded at put time and compared on every hit.

    Any write to the file moves its ctime (which a user cannot set back) or replaces its inode;
    a changed stamp means the file is re-hashed before it is served.
    """

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> ResultStamp:
        st = path.stat()
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class StoreFiles:
    """The files under one store root (the index is :class:`~nbimgprep.store.index.Index`).

    ``read_only`` is found out by :meth:`create`: a root the process cannot write to (a
    read-only mount, a colleague's folder) is opened for reading only.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.layout = StoreLayout(root)
        self._results = self.layout.results
        self.read_only = False
        self.modes = Modes()

    @property
    def dir_mode(self) -> int:
        return self.modes.folder

    @property
    def file_mode(self) -> int:
        return self.modes.file

    def create(self) -> None:
        """Make the store's folders (0700), or find the store read-only, or say clearly why
        it cannot be used."""
        advice = f"Set {CACHE_DIR_ENV} or pass cache_dir= to a writable folder."
        refuse_a_file(self.root, advice)
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StoreError(
                f"Cannot create the cache directory {self.root} ({exc.strerror}). {advice}"
            ) from None
        self.modes = Modes.of(self.root)
        self.read_only = not os.access(self.root, os.W_OK | os.X_OK)
        if self.read_only:
            if not self.layout.entries.is_dir() and any(self.root.iterdir()):
                raise StoreError(f"{self.root} is read-only and holds no nbimgprep store.")
            return
        try:
            for folder in self.layout.folders:
                self.make_folder(folder)
        except OSError as exc:
            raise StoreError(
                f"Cannot create the cache directory {folder} ({exc.strerror}). {advice}"
            ) from None
        self.read_only = not os.access(self.layout.entries, os.W_OK | os.X_OK)
        self.remove_stale_tmp()

    def remove_stale_tmp(self, older_than: float = STALE_TMP_SECONDS) -> int:
        """Remove what writers that died left in ``tmp/``. Returns how many files."""
        cutoff = time.time() - older_than
        removed = 0
        for leftover in self.layout.tmp.iterdir():
            with contextlib.suppress(OSError):
                if leftover.lstat().st_mtime < cutoff:
                    self.unlink(leftover)
                    removed += 1
        return removed

    def make_private(self, path: Path) -> None:
        """Create ``path`` (empty) with the store's file mode if it does not exist yet: SQLite
        then keeps that mode (the index's -wal and -shm copy it)."""
        fd = create_file(path, self.file_mode)
        if fd is not None:
            os.close(fd)

    def make_folder(self, path: Path) -> None:
        """Create a folder with the store's folder mode (past the umask), if it is missing."""
        create_folder(path, self.dir_mode)

    # -- where things live -------------------------------------------------------------------

    def result_path(self, name: str) -> Path:
        return Path(f"{self._results}/{name[:2]}/{name}")  # one Path, not three joins: hot

    def sidecar_path(self, key: str) -> Path:
        return self.layout.sidecar_path(key)

    def lock_path(self, key: str) -> Path:
        return self.layout.lock_path(key)

    # -- writing -------------------------------------------------------------------------------

    def write_atomic(self, target: Path, data: bytes) -> None:
        """Write ``data`` to ``target`` through ``tmp/``: fsynced, then renamed into place."""
        self.make_folder(target.parent)
        fd, tmp_name = tempfile.mkstemp(dir=self.layout.tmp, prefix=target.name[:16])
        try:
            if self.file_mode != 0o600:
                os.fchmod(fd, self.file_mode)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def write_result(self, entry: Entry, data: bytes) -> ResultStamp:
        """The result bytes, written afresh even when a file of that name exists (it may have
        been damaged in place); returns the new file's stamp."""
        self.write_atomic(entry.path, data)
        return ResultStamp.of(entry.path)

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

    def has_sidecars(self) -> bool:
        return next(self.layout.entries.glob("*/*.json"), None) is not None

    def sidecars(self) -> Iterator[Entry]:
        """Every readable sidecar's entry (the truth the index is rebuilt from)."""
        for path in self.layout.entries.glob("*/*.json"):
            entry = self.read_sidecar(path)
            if entry is not None:
                yield entry

    def changed_since(
        self, entry: Entry, recorded: ResultStamp | None
    ) -> tuple[str | None, ResultStamp | None]:
        """Whether ``entry``'s file is still the file that was stored: (why not, or None;
        the file's new stamp if it changed but re-hashed the same). Unchanged since it was last
        checked costs one stat; a changed stamp costs a re-hash."""
        try:
            now = ResultStamp.of(entry.path)
        except OSError:
            return "missing", None
        if now.size != entry.size:
            return "size", None
        if now == recorded:
            return None, None
        if damage(entry) is not None:
            return "content", None
        return None, now

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
        lock = FileLock(str(path), thread_local=False, mode=self.file_mode)
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


def uncached_copy(data: bytes, prefix: str) -> Path:
    """A file holding a result that could not be cached (the store is full or read-only).

    It lives in this process's own temporary folder, removed when the process exits; folders
    of processes that died without exiting are removed by the next process that needs one.
    """
    fd, name = tempfile.mkstemp(dir=_uncached_folder(), prefix=prefix, suffix=".png")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return Path(name)


@functools.cache
def _uncached_folder() -> Path:
    parent = Path(tempfile.gettempdir())
    for old in parent.glob("nbimgprep-uncached-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)) and old.stat().st_uid == os.getuid():
            shutil.rmtree(old, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix="nbimgprep-uncached-", dir=parent))
    folder = folder.rename(parent / f"{folder.name}-{os.getpid()}")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
