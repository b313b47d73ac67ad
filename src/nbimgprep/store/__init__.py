"""The persistent, content-addressed result cache: :class:`ResultStore` and what it returns.

Under the store root (``NBIMGPREP_CACHE_DIR``, default ``./.cache/nbimgprep``): result files
named by their own SHA-256, one JSON sidecar per entry (the truth), an SQLite index over them,
per-key locks, the request journal and a folder of files being written; :mod:`.layout` names
each one and the modes they are made with.

The modules: ``layout`` (where each file lives, and its mode), ``entry`` (the Entry and its
one field list), ``files`` (blobs, sidecars, atomic writes, the one unlink), ``index``
(SQLite), ``stats``, ``memo`` (the file-hash memo), ``usage`` (hit counts, batched),
``query`` (``find``), ``maintenance`` (clean, verify, rebuild), ``orphans`` (result files no
entry points to), ``legacy`` (the original app's JSON), ``result_store`` (the facade).
"""

from __future__ import annotations

from .entry import Entry, ResultMeta
from .files import CACHE_DIR_ENV, DEFAULT_CACHE_FOLDER, default_cache_dir
from .index import SortKey
from .legacy import ExportOutcome, ImportOutcome, Skipped
from .maintenance import DEFAULT_MAX_AGE_DAYS, CleanOutcome, VerifyOutcome
from .result_store import ResultStore
from .stats import OperationStats, StoreStats

__all__ = [
    "CACHE_DIR_ENV",
    "DEFAULT_CACHE_FOLDER",
    "DEFAULT_MAX_AGE_DAYS",
    "CleanOutcome",
    "Entry",
    "ExportOutcome",
    "ImportOutcome",
    "OperationStats",
    "ResultMeta",
    "ResultStore",
    "Skipped",
    "SortKey",
    "StoreStats",
    "VerifyOutcome",
    "default_cache_dir",
]
