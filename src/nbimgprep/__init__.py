"""nbimgprep: prepare images in Jupyter with fal.ai models, behind a persistent cache.

``from nbimgprep import Processor`` is all a script needs; ``ImagePrep`` (the widget) is
imported on first use, so ``import nbimgprep`` loads neither IPython, ipywidgets nor
fal_client. ``%load_ext nbimgprep`` registers the ``%imgcache`` magics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .batch_results import Batch, Plan
from .errors import (
    AmbiguousPrefix,
    BackendError,
    BudgetExceeded,
    ExportConflict,
    FalKeyMissing,
    FalKeyRejected,
    FalTimeout,
    ImageError,
    InvalidResult,
    NbimgprepError,
    NotInCache,
    OperationError,
    ProcessingCancelled,
    RateLimited,
    SaveError,
    SharedTierError,
    StoreError,
    StoreNotFound,
)
from .images import ImageRef
from .operations import OPERATIONS, Endpoint
from .processor import Processor, ProgressEvent, Result
from .review import Review
from .store import Entry, ResultStore

if TYPE_CHECKING:
    from .widget import ImagePrep

__version__ = "0.1.0"

__all__ = [
    "OPERATIONS",
    "AmbiguousPrefix",
    "BackendError",
    "Batch",
    "BudgetExceeded",
    "Endpoint",
    "Entry",
    "ExportConflict",
    "FalKeyMissing",
    "FalKeyRejected",
    "FalTimeout",
    "ImageError",
    "ImagePrep",
    "ImageRef",
    "InvalidResult",
    "NbimgprepError",
    "NotInCache",
    "OperationError",
    "Plan",
    "ProcessingCancelled",
    "Processor",
    "ProgressEvent",
    "RateLimited",
    "SaveError",
    "Result",
    "ResultStore",
    "Review",
    "SharedTierError",
    "StoreError",
    "StoreNotFound",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    if name == "ImagePrep":
        from .widget import ImagePrep

        return ImagePrep
    raise AttributeError(f"module 'nbimgprep' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbimgprep``: register the ``%imgcache`` magics."""
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbimgprep``: remove the ``%imgcache`` magics."""
    from .magics import unload_ipython_extension as unload

    unload(ipython)
