"""The widget's preview of a 24 MP photo: what the browser is sent, and how long it takes."""

from __future__ import annotations

from common import TESTDATA, Row, Sizes, median_seconds

from nbimgprep.images import ImageRef
from nbimgprep.thumbnails import thumbnail

PHOTO = TESTDATA / "coffee_24mp.jpg"
#: ImagePrep's default ``max_preview``.
MAX_PREVIEW = 1024


def preview(tmp: object, sizes: Sizes) -> list[Row]:
    """The preview ImagePrep sends (the one thumbnail routine at ``max_preview``) against the
    file itself, and its encoding time against decoding the photo."""
    image = ImageRef(PHOTO).open()
    data = thumbnail(image, MAX_PREVIEW).data
    took = median_seconds(lambda: thumbnail(image, MAX_PREVIEW), 3 if sizes.smoke else 7)
    decode = median_seconds(lambda: ImageRef(PHOTO).open(), 2 if sizes.smoke else 5)
    size_mb = PHOTO.stat().st_size / 1e6
    return [
        Row(
            f"widget preview of {PHOTO.name} ({image.width}x{image.height}, {size_mb:.1f} MB): "
            "bytes sent vs the file",
            f"{len(data) / 1000:,.0f} KB",
            f"{size_mb * 1000:,.0f} KB",
            len(data) / PHOTO.stat().st_size,
            "<= 300 KB",
            len(data) <= 300_000,
        ),
        Row(
            "encoding that preview vs decoding the photo",
            f"{took * 1000:,.0f} ms",
            f"{decode * 1000:,.0f} ms",
            took / decode,
        ),
    ]
