"""The persistent, content-addressed result cache: :class:`ResultStore` and what it returns.

Layout under the store root (``NBIMGPREP_CACHE_DIR``, default ``./.cache/nbimgprep``)::

    results/ab/ab12...ef.png    result bytes, named by their own SHA-256
    entries/9f/9f3c...01.json   one JSON sidecar per cache entry: the source of truth
    index.sqlite                SQLite (WAL) index over the sidecars, plus hit counters and
                                the file-hash memo; rebuildable from the sidecars
    locks/                      per-key lock files (one backend call per key across processes)
    tmp/                        files being written, renamed into place when complete

The modules: ``entry`` (the Entry and its one field list), ``files`` (blobs, sidecars, atomic
writes, the one unlink), ``index`` (SQLite), ``stats``, ``memo`` (the file-hash memo),
``usage`` (hit counts, batched), ``query`` (``find``), ``maintenance`` (clean, verify,
rebuild), ``legacy`` (the original app's JSON), ``result_store`` (the facade).
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
