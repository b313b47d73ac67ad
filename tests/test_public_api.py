"""The public names are a contract: pinned here, and importing them stays light."""

from __future__ import annotations

import subprocess
import sys

import nbimgprep


def test_public_names_are_pinned() -> None:
    assert sorted(nbimgprep.__all__) == sorted(
        [
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
    )
    for name in nbimgprep.__all__:
        assert getattr(nbimgprep, name) is not None


def test_every_error_is_an_nbimgprep_error() -> None:
    from nbimgprep import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), nbimgprep.NbimgprepError)


def test_import_loads_no_ipython_widgets_or_fal_client() -> None:
    code = (
        "import sys, nbimgprep\n"
        "heavy = {'IPython', 'ipywidgets', 'ipycanvas', 'fal_client', 'cv2', 's3fs'}\n"
        "heavy &= set(sys.modules)\n"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
