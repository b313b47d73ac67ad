"""Flags: cheap checks on a result that send the eye where it is needed.

Each flag is a short string, computed from the result (and, for a size or an identity check,
its input's header or a small copy of it) on first need, never for the whole batch at once:

``"kept almost nothing"`` / ``"removed almost nothing"``
    ``remove_background`` kept under 2% or over 98% of the image (alpha coverage).
``"unexpected size"``
    the result's size is not what the operation promises for its input
    (:meth:`~nbimgprep.operations.Operation.output_size`).
``"unchanged"``
    ``face_detail`` gave back its input, pixel for pixel (at a small size).
"""

from __future__ import annotations

from PIL import Image, ImageChops, ImageOps

from ..errors import NbimgprepError
from ..images import ImageRef
from ..operations import OPERATIONS, Operation
from ..pixels import open_image
from ..results import Result, Source

__all__ = ["FLAG_NAMES", "KEPT_LITTLE", "KEPT_ALL", "UNCHANGED", "WRONG_SIZE", "flags_of"]

KEPT_LITTLE = "kept almost nothing"
KEPT_ALL = "removed almost nothing"
WRONG_SIZE = "unexpected size"
UNCHANGED = "unchanged"
FLAG_NAMES = (KEPT_LITTLE, KEPT_ALL, WRONG_SIZE, UNCHANGED)

#: Alpha coverage under this (or over 1 minus this) flags a background removal.
COVERAGE_MARGIN = 0.02
#: The long side of the copies the pixel checks look at.
CHECK_PX = 256


def flags_of(result: Result, source: Source) -> tuple[str, ...]:
    """The flags of ``result``, made from ``source`` by ``result.operation``."""
    flags: list[str] = []
    op = OPERATIONS.get(result.operation)
    size = _input_size(source)
    if op is not None and size is not None and _wrong_size(result, op, size):
        flags.append(WRONG_SIZE)
    if result.operation == "remove_background":
        coverage = _alpha_coverage(result)
        if coverage is not None and coverage < COVERAGE_MARGIN:
            flags.append(KEPT_LITTLE)
        elif coverage is not None and coverage > 1 - COVERAGE_MARGIN:
            flags.append(KEPT_ALL)
    if result.operation == "face_detail" and _same_pixels(result, source):
        flags.append(UNCHANGED)
    return tuple(flags)


def _wrong_size(result: Result, op: Operation, size: tuple[int, int]) -> bool:
    if not (result.width and result.height):
        return False  # an old entry that never recorded its size
    return op.output_size(size, result.params) != (result.width, result.height)


def _small(img: Image.Image) -> Image.Image:
    img.draft("RGB", (CHECK_PX, CHECK_PX))
    upright = ImageOps.exif_transpose(img)
    upright.thumbnail((CHECK_PX, CHECK_PX), Image.Resampling.BOX)
    return upright


def _alpha_coverage(result: Result) -> float | None:
    """The share of the image that is (mostly) opaque, or None if it cannot be read."""
    try:
        with open_image(result.path) as img:
            if img.mode != "RGBA":
                img = img.convert("RGBA")
            small = _small(img)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    histogram = small.getchannel("A").histogram()
    opaque = sum(histogram[128:])
    return opaque / max(1, sum(histogram))


def _open_source(source: Source) -> Image.Image:
    ref = source if isinstance(source, ImageRef) else ImageRef(source)
    if ref.path is not None:
        return open_image(ref.path)
    return ref.open()


def _input_size(source: Source) -> tuple[int, int] | None:
    """The input's upright (width, height), from its header where it is a file."""
    try:
        with _open_source(source) as img:
            orientation = img.getexif().get(0x0112, 1)
            width, height = img.size
    except (OSError, ValueError, Image.DecompressionBombError, NbimgprepError):
        return None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _same_pixels(result: Result, source: Source) -> bool:
    if _input_size(source) != (result.width, result.height):
        return False
    try:
        with open_image(result.path) as out, _open_source(source) as before:
            a = _small(out).convert("RGB")
            b = _small(before).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError, NbimgprepError):
        return False
    return a.size == b.size and ImageChops.difference(a, b).getbbox() is None
