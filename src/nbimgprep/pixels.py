"""Decoding, checking and encoding pixels: the one place bad image data is caught and named.

Why a module of its own: every image nbimgprep touches (an input, a crop, a backend's
result) goes through the same checks, so a mode, a size or a damaged file that one path
handles is handled by all of them. Inputs come out upright and in one of four modes
(RGB, RGBA, L, LA); anything Pillow can open but a model cannot take is converted here.
"""

from __future__ import annotations

import io
import math
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

__all__ = [
    "MAX_PIXELS",
    "content_type_of",
    "decode_image",
    "encode_png",
    "normalize_mode",
    "open_image",
    "pillow_quiet",
    "probe",
]

#: Largest image, input or result, that nbimgprep decodes: 100 megapixels.
MAX_PIXELS = 100_000_000
PROCESSABLE_MODES = ("RGB", "RGBA", "L", "LA")
NUMERIC_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")

# warnings.catch_warnings() swaps the process-wide filter list: two threads doing it at
# once could leave Pillow's warning silenced for the user's own code, or not at all for ours.
_QUIET_LOCK = threading.Lock()


@contextmanager
def pillow_quiet() -> Iterator[None]:
    """Silence Pillow's DecompressionBombWarning for the block (``Image.open``, ``crop``).

    Pillow warns from 89 megapixels, under the 100 MP nbimgprep accepts (a 4x upscale may
    make that much); our own cap, :data:`MAX_PIXELS`, is enforced by :func:`decode_image`.
    Keep the block short: it holds a lock.
    """
    with _QUIET_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def open_image(source: str | Path | IO[bytes]) -> Image.Image:
    """``Image.open`` for files nbimgprep made or checked (results, previews): lazy, and
    without Pillow's bomb warning for an image inside our own cap."""
    with pillow_quiet():
        return Image.open(source)


def probe(data: bytes) -> tuple[str | None, str | None, int]:
    """(format, mode, EXIF orientation) from the header alone; Nones if Pillow cannot tell."""
    try:
        with pillow_quiet():
            img = Image.open(io.BytesIO(data))
        with img:
            return img.format, img.mode, int(img.getexif().get(0x0112, 1) or 1)
    except Exception:  # a damaged header is decode_image's to report, with its reason
        return None, None, 1


def content_type_of(data: bytes) -> str | None:
    """The MIME type of encoded image bytes, from their header (None if not an image)."""
    fmt = probe(data)[0]
    return Image.MIME.get(fmt) if fmt else None


def decode_image(data: bytes | Path, label: str, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode, check and turn upright: the one place bad pixels are caught.

    Rejects empty, non-image, truncated and oversized inputs with an :class:`ImageError`
    naming ``label``. Returns an image in RGB, RGBA, L or LA, EXIF orientation applied.
    """
    if isinstance(data, bytes) and not data:
        raise ImageError(f"{label}: the file is empty (0 bytes).")
    source: Any = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with pillow_quiet():
            img = Image.open(source)
        check_size(img.size, label, max_pixels)
        img.load()
        ImageOps.exif_transpose(img, in_place=True)  # a copy would double the peak memory
        upright = img
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(
            f"{label}: refused, larger than the {max_pixels / 1e6:.0f} megapixels nbimgprep "
            f"accepts; Pillow flags it as a possible decompression bomb ({exc})"
        ) from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{label}: not an image Pillow can read (is it really a JPEG/PNG/WebP?)."
        ) from None
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file.") from None
    except MemoryError:
        raise ImageError(f"{label}: not enough memory to decode it; downscale it first.") from None
    except Exception as exc:  # OSError, SyntaxError ("broken PNG file"), struct.error, ...
        raise ImageError(
            f"{label}: the image data is damaged or truncated ({exc}); re-export or "
            "re-download the file."
        ) from None
    return normalize_mode(upright, label)


def check_size(size: tuple[int, int], label: str, max_pixels: int = MAX_PIXELS) -> None:
    """Refuse images with no pixels, or more than ``max_pixels``."""
    w, h = size
    if w <= 0 or h <= 0:
        raise ImageError(f"{label}: the image is {w}x{h}, it has no pixels.")
    if w * h > max_pixels:
        raise ImageError(
            f"{label}: {w}x{h} is {w * h / 1e6:.0f} megapixels, more than the "
            f"{max_pixels / 1e6:.0f} MP nbimgprep accepts (a decompression bomb, or a "
            "photo to downscale first)."
        )


def normalize_mode(img: Image.Image, label: str = "image") -> Image.Image:
    """Any Pillow mode as RGB, RGBA, L or LA, keeping the picture and its transparency.

    Palette, 1-bit, CMYK, YCbCr, LAB, HSV and premultiplied modes are converted; integer
    and float modes (``I``, ``I;16``, ``F``) are mapped onto 0..255 by the range their
    values show (see :func:`_numeric_to_l`).
    """
    mode = img.mode
    if mode in ("L", "RGB") and "transparency" in img.info:
        return img.convert(mode + "A" if mode == "L" else "RGBA")
    if mode in PROCESSABLE_MODES:
        return img
    if mode in NUMERIC_MODES:
        return _numeric_to_l(img, label)
    if mode == "1":
        return img.convert("L")
    if mode == "P":
        return img.convert("RGBA" if img.has_transparency_data else "RGB")
    if mode == "La":  # premultiplied: Pillow converts it from RGBa only
        lum, alpha = img.split()
        return Image.merge("RGBa", (lum, lum, lum, alpha)).convert("RGBA").convert("LA")
    if mode in ("PA", "RGBa"):
        return img.convert("RGBA")
    try:
        return img.convert("RGB")
    except ValueError:
        raise ImageError(
            f"{label}: Pillow cannot convert mode {mode} images to RGB; convert it to RGB "
            "yourself first (image.convert(...))."
        ) from None


def _numeric_to_l(img: Image.Image, label: str) -> Image.Image:
    """An integer or float image as 8-bit grey, read by its values' range.

    0..1 (a float picture, or a 0/1 mask) is scaled up to 0..255; 0..255 is kept as it is;
    0..65535 (16-bit) is scaled down; anything else (negative, larger) is stretched from its
    own minimum to its maximum. A constant image stays one flat grey.
    """
    if img.mode.startswith("I;16"):
        img = img.convert("I")
    extrema: Any = img.getextrema()
    low, high = float(extrema[0]), float(extrema[1])
    if not (math.isfinite(low) and math.isfinite(high) and _all_finite(img)):
        raise ImageError(
            f"{label}: the {img.mode} image holds NaN or infinite values; replace them "
            "first (e.g. numpy.nan_to_num) or convert it to 8-bit yourself."
        )
    if low >= 0 and high <= 1:
        scale, offset = 255.0, 0.0
    elif low >= 0 and high <= 255:
        scale, offset = 1.0, 0.0
    elif low >= 0 and high <= 65535:
        scale, offset = 1 / 256, 0.0
    else:
        scale = 255.0 / (high - low) if high > low else 0.0
        offset = -low * scale if high > low else 128.0
    if img.mode == "I":  # Pillow's point() on I images rounds to integers: work in floats
        img = img.convert("F")
    if (scale, offset) != (1.0, 0.0):
        img = img.point(lambda v: v * scale + offset)
    return img.convert("L")


def _all_finite(img: Image.Image) -> bool:
    """No NaN or infinity in a float image (Pillow's extrema skip NaN). Checked with NumPy
    where it is installed (it comes with the ``local`` extra); assumed without it."""
    if img.mode != "F":
        return True
    try:
        import numpy as np
    except ImportError:
        return True
    return bool(np.isfinite(np.asarray(img)).all())


def encode_png(img: Image.Image) -> bytes:
    """PNG bytes of ``img``, no metadata: deterministic for the same pixels."""
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=6)
    return out.getvalue()
