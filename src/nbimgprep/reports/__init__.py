"""What the cache commands return: objects that show themselves as HTML in a notebook and as a
plain-text table in a terminal.

Each command in :mod:`nbimgprep.commands` returns one of these, so ``x = %imgcache list``
keeps the data (``x.entries``), the last line of a cell renders ``_repr_html_``, and the
command line prints ``str(report)`` and exits with ``report.exit_code``. Reports hold what the
store returned and render it; they never touch the store again (thumbnails read files only).

* :mod:`.base`: the :class:`Report` base and the HTML pieces reports share;
* :mod:`.entries`: ``list`` and ``inspect``;
* :mod:`.maintenance`: ``stats``, ``clean``, ``rm``, ``verify``, ``export``, ``import``;
* :mod:`.run`: ``run``.

Tables, sizes and ages come from :mod:`nbimgprep.formatting`.
"""

from .base import HTML_ROW_LIMIT, Report
from .entries import CacheInspection, CacheListing, ImageGroup, thumbnail_uri
from .maintenance import (
    CacheStats,
    CleanSummary,
    ExportSummary,
    ImportSummary,
    RemovalSummary,
    VerifySummary,
)
from .run import RunItem, RunPlan, RunSummary

__all__ = [
    "HTML_ROW_LIMIT",
    "CacheInspection",
    "CacheListing",
    "CacheStats",
    "CleanSummary",
    "ExportSummary",
    "ImageGroup",
    "ImportSummary",
    "RemovalSummary",
    "Report",
    "RunItem",
    "RunPlan",
    "RunSummary",
    "VerifySummary",
    "thumbnail_uri",
]
