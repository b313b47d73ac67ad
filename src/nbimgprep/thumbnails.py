"""Small pictures of big images: the one routine behind every preview and thumbnail.

The widget's preview, a :class:`~nbimgprep.results.Result` shown as a cell's value and the
cache reports' figures all need the same thing: a full-size image (or its file) made small,
encoded once, JPEG where it is opaque (small) and PNG where it has transparency (so a removed
background stays visible as such, over :data:`CHECKERBOARD_CSS`).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from .pixels import open_image

__all__ = [
    "CHECKERBOARD_CSS",
    "FIGURE_PX",
    "LISTING_PX",
    "Thumbnail",
    "thumbnail",
    "thumbnail_of_file",
]

#: The long side of a cache report's figure (many to a page).
LISTING_PX = 160
#: The long side of a Result shown as a cell's value (one at a time).
FIGURE_PX = 384
JPEG_QUALITY = 85
#: Behind a picture with transparency: a grey and white checkerboard (CSS declarations).
CHECKERBOARD_CSS = (
    "background-color:#fff;"
    "background-image:repeating-conic-gradient(#e5e7eb 0% 25%, #fff 0% 50%);"
    "background-size:16px 16px"
)


@dataclass(frozen=True)
class Thumbnail:
    """An encoded small picture: its bytes, ``"jpeg"`` or ``"png"``, and its pixel size."""

    data: bytes
    format: str
    width: int
    height: int

    @property
    def mime(self) -> str:
        return f"image/{self.format}"

    def data_uri(self) -> str:
        """The picture inline, for ``<img src=...>``."""
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info


def thumbnail(
    img: Image.Image, max_px: int, *, size: tuple[int, int] | None = None, lossless: bool = False
) -> Thumbnail:
    """``img`` at most ``max_px`` on its long side (never enlarged), encoded once.

    ``size`` asks for an exact size instead (the widget's canvas geometry). ``lossless``
    keeps PNG even for an opaque image.
    """
    if size is None:
        scale = min(1.0, max_px / max(img.size))
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    small = img
    if small.mode not in ("RGB", "RGBA", "L", "LA"):
        small = small.convert("RGBA" if has_alpha(small) else "RGB")
    if size != img.size:
        small = small.resize(size, Image.Resampling.LANCZOS, reducing_gap=1.5)
    out = io.BytesIO()
    if lossless or has_alpha(small):
        small.save(out, format="PNG", compress_level=3)
        fmt = "png"
    else:
        small.convert("RGB").save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
        fmt = "jpeg"
    return Thumbnail(out.getvalue(), fmt, small.width, small.height)


def thumbnail_of_file(
    path: Path | str | None, max_px: int = LISTING_PX, *, lossless: bool = False
) -> Thumbnail | None:
    """A thumbnail of an image file, upright, or None if it cannot be read or decoded.

    JPEGs are decoded at a reduced size (``draft``), so a 24 MP photo costs a fraction of
    its full decode. Huge files are refused by Pillow's decompression-bomb check; results
    inside nbimgprep's own cap pass without its warning.
    """
    if path is None:
        return None
    try:
        with open_image(path) as img:
            img.draft("RGB", (max_px * 2, max_px * 2))
            ImageOps.exif_transpose(img, in_place=True)  # no full-size copy
            return thumbnail(img, max_px, lossless=lossless)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
