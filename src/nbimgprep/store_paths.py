"""Where the cache commands read and write, checked before anything is touched.

:func:`open_store` opens the store both faces use: a cache directory that is an empty string
(which would otherwise mean the working directory), a file, or a folder that cannot be created
or opened is a :class:`~nbimgprep.errors.StoreError` naming it, and a command that only reads
(``create=False``) finds :class:`~nbimgprep.errors.StoreNotFound` where there is no store
instead of creating an empty one. :func:`user_path` checks a path typed for export or import.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import StoreError, StoreNotFound
from .store import CACHE_DIR_ENV
from .store.layout import StoreLayout, refuse_a_file

if TYPE_CHECKING:
    from .store import ResultStore

__all__ = ["open_store", "os_reason", "user_path"]

_SETTING = f"--cache-dir, {CACHE_DIR_ENV} or %config ImgCacheMagics.cache_dir"


def open_store(
    cache_dir: str | os.PathLike[str] | None = None, *, create: bool = True
) -> ResultStore:
    """The store at ``cache_dir`` (``None``: ``$NBIMGPREP_CACHE_DIR`` or ``./.cache/nbimgprep``).

    Every way this can go wrong is a :class:`StoreError` naming the folder: an empty string
    (which would otherwise mean the working directory), a file, a folder that cannot be
    created or opened, and, with ``create=False``, a folder that holds no store
    (:class:`StoreNotFound`; nothing is created there).
    """
    from .store import ResultStore, default_cache_dir

    root = default_cache_dir() if cache_dir is None else user_path(cache_dir, "cache directory")
    try:
        refuse_a_file(root, f"Give a folder ({_SETTING}).")
        if not create and not StoreLayout(root).holds_store():
            raise StoreNotFound(
                f"No nbimgprep cache at {root}: nothing has been cached there, and nothing was "
                f"created. Check the cache directory ({_SETTING}), or process an image first."
            )
        return ResultStore(root)
    except StoreError:
        raise
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(
            f"Cannot open the cache at {root} ({os_reason(exc)}). Check the folder and its "
            f"permissions, or give another one ({_SETTING})."
        ) from None


def os_reason(exc: BaseException) -> str:
    """``"Permission denied"``: what the OS said, without repeating the path."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def user_path(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as typed by the user, ``~`` expanded; an empty one, or one with a NUL
    character (which no file system accepts), is a :class:`StoreError` naming ``what``."""
    text = os.fspath(path)
    if not text.strip():
        raise StoreError(
            f"The {what} is an empty string. Give a folder ({_SETTING}), e.g. .cache/nbimgprep."
            if what == "cache directory"
            else f"The {what} is empty; give the path of the file."
        )
    if "\0" in text:
        raise StoreError(f"The {what} {text!r} contains a NUL character; no file can be named so.")
    try:
        return Path(text).expanduser()
    except RuntimeError:  # "~name" for a user that does not exist
        raise StoreError(
            f"The {what} {text!r} starts with ~ but names no user on this machine; "
            "give the full path."
        ) from None
