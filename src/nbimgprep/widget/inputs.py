"""The widget's current input as a recipe for its pixels, not the pixels themselves.

A kernel is not a photo editor with 64 GB: a 24 MP photo is 72 MB decoded, its 2x upscale
288 MB. The widget keeps what it shows (previews of a few hundred KB) and, for the input,
where its pixels come from: the file (the photo, or a result's file in the cache, which is
the full-resolution copy) and the crops applied to it. Every step that needs the pixels
decodes them again from there into an :class:`~nbimgprep.images.ImageRef` of its own, used
for that step and then dropped, so nothing full size outlives the step that needed it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from PIL import Image

from ..crop_geometry import Box
from ..images import ImageRef
from ..memory import release_freed_memory

T = TypeVar("T")

__all__ = ["InputImage"]


@dataclass(frozen=True)
class InputImage:
    """An input: its source (never decoded in place), the crops applied to it, in order,
    and what the widget needs to know without decoding (hash, size)."""

    source: ImageRef
    crops: tuple[Box, ...]
    sha256: str
    size: tuple[int, int]
    name: str

    @classmethod
    def decode(cls, source: ImageRef, look: Callable[[Image.Image], T]) -> tuple[InputImage, T]:
        """The input for ``source``, and what ``look`` makes of its pixels (a preview)."""
        source.sha256  # hashed once here: the fresh copies made later inherit it  # noqa: B018
        return cls._of(source, (), look)

    @classmethod
    def _of(
        cls, source: ImageRef, crops: tuple[Box, ...], look: Callable[[Image.Image], T]
    ) -> tuple[InputImage, T]:
        ref = _rebuild(source, crops)
        try:
            pixels = ref.open()
            made = cls(source, crops, ref.sha256, pixels.size, ref.name)
            view = look(pixels)
            del pixels, ref  # the full-size pixels go here, before the memory is given back
            return made, view
        finally:
            release_freed_memory()

    def look(self, look: Callable[[Image.Image], T]) -> T:
        """What ``look`` makes of the pixels, decoded for it and dropped after."""
        return self._of(self.source, self.crops, look)[1]

    def ref(self) -> ImageRef:
        """A fresh :class:`ImageRef` of this input: decoded when used, freed when dropped."""
        return _rebuild(self.source, self.crops)

    def open(self) -> Image.Image:
        """The full-size pixels, decoded now (the caller owns them)."""
        return self.ref().open()

    def crop(self, box: Box, look: Callable[[Image.Image], T]) -> tuple[InputImage, T]:
        """This input cropped to ``box`` (a new image, its own hash), and ``look``'s view."""
        return self._of(self.source, (*self.crops, box), look)


def _rebuild(source: ImageRef, crops: tuple[Box, ...]) -> ImageRef:
    ref = ImageRef(source)  # a copy: whatever it decodes is its own, not the source's
    for box in crops:
        ref = ref.crop(box)
    return ref
