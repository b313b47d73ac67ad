"""What every local operation's work shares: its signature, the checkpoints that let a
cancelled call stop between stages, and OpenCV (imported on first use, with an install hint)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from PIL import Image

from ...errors import BackendError

__all__ = ["INSTALL_HINT", "Cancelled", "Checkpoint", "Logs", "Work", "require_cv"]

INSTALL_HINT = 'pip install "nbimgprep[local]"'

Logs = list[str]
#: (input, the output size the operation promises, params, checkpoint) -> (output, log lines)
Work = Callable[
    [Image.Image, tuple[int, int], Mapping[str, Any], "Checkpoint"], tuple[Image.Image, Logs]
]


class Cancelled(Exception):
    """Raised inside the worker thread when the awaiting task was cancelled."""


class Checkpoint:
    """Lets the worker thread stop between stages once the awaiting task is cancelled."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def __call__(self) -> None:
        if self._event.is_set():
            raise Cancelled


def require_cv() -> tuple[Any, Any]:
    """OpenCV and NumPy, or a BackendError saying how to install them."""
    try:
        import cv2
        import numpy as np
    except ImportError as exc:
        raise BackendError(
            "The local backend needs OpenCV and NumPy for background removal and face "
            f"detail, and they are not installed ({exc}). Fix: {INSTALL_HINT}"
        ) from None
    return cv2, np
