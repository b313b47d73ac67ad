"""Many inputs as one list: folders and globs expanded, each input with the label its errors use.

A batch and a plan take the same ``sources`` (a path, a folder, a glob, bytes, a PIL image, an
``ImageRef``, or a list of any of them) and must agree on what they mean, item for item, so the
expansion lives here, once. A folder is listed with ``os.scandir``: its entries' types come with
the listing, so ten thousand images cost one directory read, not ten thousand ``stat()`` calls.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TypeAlias

from PIL import Image

from .errors import ImageError, NbimgprepError
from .images import ImageRef
from .results import Source

__all__ = ["IMAGE_SUFFIXES", "Sources", "expand_sources", "named"]

#: What a folder's images are: files with these suffixes (any case).
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".jfif"}
)
Sources: TypeAlias = "Source | Iterable[Source]"


def expand_sources(sources: Sources) -> list[tuple[Source, str]]:
    """Each input with the label its errors use: a folder becomes its images (sorted), a glob
    its matching files (sorted), anything else stays one input."""
    given: Iterable[Source] = [sources] if _is_single(sources) else sources  # type: ignore[list-item,assignment]
    out: list[tuple[Source, str]] = []
    for i, source in enumerate(given):
        if isinstance(source, (str, os.PathLike)):
            out += [(p, str(p)) for p in _paths(source)]
        else:
            out.append((source, _label(i, source)))
    return out


def _is_single(sources: object) -> bool:
    single = (str, os.PathLike, bytes, bytearray, memoryview, ImageRef, Image.Image)
    return isinstance(sources, single) or hasattr(sources, "read")


def _paths(source: str | os.PathLike[str]) -> list[Path]:
    path = Path(source).expanduser()
    if path.is_dir():
        found = sorted(path / name for name in _image_names(path))
        if not found:
            raise ImageError(f"{path}: the folder holds no images ({_suffix_list()}).")
        return found
    text = str(source)
    if not path.exists() and glob.has_magic(text):
        matches = sorted(Path(m) for m in glob.glob(os.path.expanduser(text), recursive=True))
        files = [m for m in matches if m.is_file()]
        if not files:
            raise ImageError(f"{text}: the pattern matches no files.")
        return files
    return [path]  # a file, or a missing one that fails in its own place


def _image_names(folder: Path) -> list[str]:
    """The names of the image files in ``folder`` (a symlink counts as what it points to)."""
    with os.scandir(folder) as listing:
        return [
            entry.name
            for entry in listing
            if os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES and entry.is_file()
        ]


def _suffix_list() -> str:
    return ", ".join(sorted(IMAGE_SUFFIXES))


def _label(index: int, source: object) -> str:
    if isinstance(source, ImageRef):
        return source.name
    name = getattr(source, "name", None)
    if isinstance(name, str):
        return name
    kind = "PIL image" if isinstance(source, Image.Image) else type(source).__name__
    return f"item {index} ({kind})"


def named(exc: BaseException, label: str) -> NbimgprepError:
    """The error with the input named in its message (same class, same attributes)."""
    if not isinstance(exc, NbimgprepError):
        renamed_plain = NbimgprepError(f"{label}: {type(exc).__name__}: {exc}")
        renamed_plain.__cause__ = exc
        return renamed_plain
    message = str(exc)
    if label in message:
        return exc
    renamed = type(exc).__new__(type(exc))
    renamed.__dict__.update(exc.__dict__)
    renamed.args = (f"{label}: {message}",)
    renamed.__cause__ = exc.__cause__
    return renamed.with_traceback(exc.__traceback__)
