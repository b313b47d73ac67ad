"""Saving what the widget shows: checked before anything is written.

Pillow picks the format from the suffix and fails late with a ``ValueError`` or a
``FileNotFoundError``; here the suffix and the folder are checked first, so the user gets a
:class:`~nbimgprep.errors.SaveError` that says what to change.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from ..errors import SaveError

__all__ = ["save_image"]


def _format_for(target: Path) -> str:
    suffix = target.suffix.lower()
    formats = Image.registered_extensions()
    if suffix not in formats:
        known = ", ".join(s for s in (".png", ".jpg", ".webp", ".tif") if s in formats)
        what = f"the suffix {target.suffix!r}" if suffix else "no suffix"
        raise SaveError(
            f"Cannot save to {target}: {what} names no image format; use one of {known}."
        )
    return formats[suffix]


def save_image(path: str | Path, copy_from: Path | None, image: Callable[[], Image.Image]) -> Path:
    """Save to ``path``: a byte-for-byte copy of ``copy_from`` when the suffix matches it,
    else ``image()`` encoded in the suffix's format (JPEG drops any alpha)."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise SaveError(f"Cannot save to {target}: it is a folder; give a file name.")
    fmt = _format_for(target)
    folder = target.parent
    if not folder.is_dir():
        raise SaveError(
            f"Cannot save to {target}: the folder {folder} does not exist; create it first."
        )
    try:
        if copy_from is not None and target.suffix.lower() == copy_from.suffix.lower():
            shutil.copyfile(copy_from, target)
            return target
        img = image()
        if fmt == "JPEG" and img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        img.save(target, format=fmt)
    except OSError as exc:
        raise SaveError(f"Cannot save to {target}: {exc.strerror or exc}.") from None
    return target
