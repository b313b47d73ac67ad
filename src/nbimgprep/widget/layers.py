"""The input's canvas: the image on one layer, the crop box on another (ipyannotations' style).

Pixels never travel as canvas commands or widget state: the preview is encoded once into an
``ipywidgets.Image`` that the bottom layer draws by reference, so a redraw (a new browser
tab, a page reload) costs a few bytes. The crop box has its own layer: a mouse move while
dragging redraws only that layer, in one batched message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets as W
from ipycanvas import MultiCanvas, hold_canvas
from PIL import Image

from ..crop_geometry import Box, Fit, Handle, box_to_canvas, fit
from ..memory import release_freed_memory
from ..thumbnails import Thumbnail, thumbnail, thumbnail_of_file

__all__ = ["CURSORS", "ImageLayers", "Preview", "TIMES"]

TIMES = "\u00d7"  # the multiplication sign, as in 640 x 480
CURSORS: dict[Handle, str] = {
    "nw": "nwse",
    "se": "nwse",
    "ne": "nesw",
    "sw": "nesw",
    "n": "ns",
    "s": "ns",
    "e": "ew",
    "w": "ew",
    "inside": "move",
    "outside": "crosshair",
}
_HANDLE_PX = 9


class Preview:
    """The encoded preview of an image and its geometry (preview px per image px)."""

    def __init__(self, img: Image.Image, max_preview: int) -> None:
        self.fit: Fit = fit(img.size, max_preview)
        small = self.thumbnail(img, max_preview)
        #: The encoded preview (the compare view shows it again under a result).
        self.thumb = small
        #: The ``ipywidgets.Image`` the canvas draws by reference (never displayed itself).
        self.widget = W.Image(
            value=small.data, format=small.format, layout=W.Layout(display="none")
        )

    @staticmethod
    def thumbnail(img: Image.Image, max_preview: int) -> Thumbnail:
        """The preview's pixels alone: the canvas geometry, encoded once."""
        geometry = fit(img.size, max_preview)
        return thumbnail(img, max_preview, size=(geometry.width, geometry.height))

    def close(self) -> None:
        self.widget.close()


def result_preview(path: Path, max_preview: int) -> Thumbnail | None:
    """A result's preview, from its file: decoded, made small, and the pixels dropped."""
    try:
        return thumbnail_of_file(path, max_preview)
    finally:
        release_freed_memory()


class ImageLayers:
    """A two-layer ``MultiCanvas``: layer 0 the preview, layer 1 the crop overlay."""

    def __init__(self) -> None:
        self.canvas = MultiCanvas(2, width=1, height=1)
        self.canvas.add_class("nbip-canvas")
        self.canvas.add_class("nbip-checker")
        self.canvas.add_class(f"nbip-cur-{CURSORS['outside']}")
        self._cursor: Handle = "outside"
        self.preview: Preview | None = None

    def show(self, preview: Preview) -> None:
        """A new input: size the canvas to its preview and forget the old one."""
        old, self.preview = self.preview, preview
        self.canvas.width = preview.fit.width
        self.canvas.height = preview.fit.height
        self.canvas.layout = W.Layout(
            width="100%", max_width=f"{preview.fit.width}px", height="auto"
        )
        if old is not None:
            old.close()

    def redraw(self, box: Box | None) -> None:
        """Draw everything: the preview (by reference, no pixels sent) and the overlay."""
        if self.preview is None:
            return
        geometry = self.preview.fit
        with hold_canvas():
            base = self.canvas[0]
            base.clear()
            base.draw_image(self.preview.widget, 0, 0, geometry.width, geometry.height)
            self._overlay(box)

    def draw_box(self, box: Box | None) -> None:
        """Redraw the crop layer only, in one message: the cheap path of every mouse move."""
        with hold_canvas():
            self._overlay(box)

    def set_cursor(self, handle: Handle) -> None:
        """Change the pointer only when the zone under it changes (one message, not per move)."""
        if CURSORS[handle] == CURSORS[self._cursor]:
            return
        self.canvas.remove_class(f"nbip-cur-{CURSORS[self._cursor]}")
        self.canvas.add_class(f"nbip-cur-{CURSORS[handle]}")
        self._cursor = handle

    def _overlay(self, box: Box | None) -> None:
        """The crop layer: dimmed outside, the box, thirds, handles, and its size in px."""
        layer: Any = self.canvas[1]
        layer.clear()
        if box is None or self.preview is None:
            return
        cw, ch = self.preview.fit.width, self.preview.fit.height
        x, y, w, h = box_to_canvas(box, self.preview.fit.scale)
        layer.fill_style = "rgba(12, 14, 22, 0.58)"
        layer.fill_rect(0, 0, cw, y)
        layer.fill_rect(0, y + h, cw, ch - y - h)
        layer.fill_rect(0, y, x, h)
        layer.fill_rect(x + w, y, cw - x - w, h)
        layer.line_width = 1
        layer.stroke_style = "rgba(255, 255, 255, 0.45)"
        layer.begin_path()
        for i in (1, 2):
            layer.move_to(x + w * i / 3, y)
            layer.line_to(x + w * i / 3, y + h)
            layer.move_to(x, y + h * i / 3)
            layer.line_to(x + w, y + h * i / 3)
        layer.stroke()
        layer.line_width = 2
        layer.stroke_style = "#ffffff"
        layer.stroke_rect(x, y, w, h)
        s = _HANDLE_PX
        layer.fill_style = "#ffffff"
        layer.stroke_style = "#2f6fde"
        layer.line_width = 1.5
        for hx, hy in (
            (x, y),
            (x + w / 2, y),
            (x + w, y),
            (x + w, y + h / 2),
            (x + w, y + h),
            (x + w / 2, y + h),
            (x, y + h),
            (x, y + h / 2),
        ):
            layer.fill_rect(hx - s / 2, hy - s / 2, s, s)
            layer.stroke_rect(hx - s / 2, hy - s / 2, s, s)
        label = f"{box[2]} {TIMES} {box[3]}"
        ty = y + h + 6 if y + h + 26 <= ch else max(y - 26, 2)
        tw = 9 + 7.5 * len(label)
        tx = min(max(x, 2), cw - tw - 2)
        layer.fill_style = "rgba(20, 24, 36, 0.82)"
        layer.fill_rect(tx, ty, tw, 20)
        layer.fill_style = "#ffffff"
        layer.font = "12px sans-serif"
        layer.text_baseline = "middle"
        layer.fill_text(label, tx + 6, ty + 10)
