"""Compare: the result with its input beneath it, split by a divider the user drags.

Left of the divider the input shows, right of it the result, both at the result's preview
size: an upscale's input is scaled up to the result's size for the view only (the browser
scales the input's preview; no pixels are made for it). Like the crop box, it is a layered
canvas drawing two ``ipywidgets.Image`` previews by reference: the input on layer 0, the
result on layer 1 clipped to the right of the divider, the divider on layer 2. Moving the
divider redraws layers 1 and 2 in one message.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as W
from ipycanvas import MultiCanvas, hold_canvas

from ..thumbnails import Thumbnail
from .running import reported

__all__ = ["CompareView"]

_KNOB_PX = 9
_STEP = 0.02  # arrow keys move the divider by 2% of the width (Shift: 10%)


class CompareView:
    """The compare canvas and its toggle; ``split`` is where the divider is (0..1)."""

    def __init__(self, report: Any) -> None:
        self._report = report
        self.toggle = W.ToggleButton(
            value=False,
            description="Compare",
            icon="columns",
            tooltip="Drag a divider across the result to see the input beneath it",
            layout=W.Layout(width="auto"),
        )
        self.toggle.add_class("nbip-btn")
        self.canvas = MultiCanvas(3, width=1, height=1)
        self.canvas.add_class("nbip-compare")
        self.canvas.add_class("nbip-checker")
        self.canvas.add_class("nbip-cur-ew")
        self.canvas.layout = W.Layout(display="none")
        self.split = 0.5
        self._dragging = False
        self._input: W.Image | None = None
        self._result: W.Image | None = None
        self._size = (1, 1)
        canvas = self.canvas
        canvas.on_mouse_down(self._on_mouse_down)
        canvas.on_mouse_move(self._on_mouse_move)
        canvas.on_mouse_up(self._on_mouse_up)
        canvas.on_mouse_out(self._on_mouse_up)
        canvas.on_key_down(self._on_key_down)
        canvas.on_client_ready(self.redraw)

    def _show_error(self, exc: BaseException) -> None:
        self._report(exc)

    @property
    def showing(self) -> bool:
        return bool(self.canvas.layout.display != "none")

    def show(
        self,
        result: W.Image | None,
        size: tuple[int, int],
        input_preview: Thumbnail | None,
        on: bool,
    ) -> bool:
        """Show the comparison of ``result`` (the result panel's image, ``size`` px) over
        the input's preview when ``on`` and there is a result; hide it otherwise. True when
        shown."""
        if self._input is not None and (input_preview is None or result is None):
            self._input.close()
            self._input = None
        if result is None or input_preview is None:
            self.canvas.layout.display = "none"
            self.toggle.disabled = True
            return False
        self.toggle.disabled = False
        if self._input is None or self._input.value != input_preview.data:
            if self._input is not None:
                self._input.close()
            self._input = W.Image(value=input_preview.data, format=input_preview.format)
        self._result = result
        if not on:
            self.canvas.layout.display = "none"
            return False
        width, height = self._size = size
        self.canvas.width, self.canvas.height = width, height
        self.canvas.layout = W.Layout(
            display=None, width="100%", max_width=f"{width}px", height="auto"
        )
        self.redraw()
        return True

    def move(self, split: float) -> None:
        """Put the divider at ``split`` (0: all result, 1: all input), redrawn at once."""
        self.split = min(1.0, max(0.0, float(split)))
        with hold_canvas():
            self._draw_result_and_divider()

    def redraw(self) -> None:
        if self._input is None or self._result is None or not self.showing:
            return
        width, height = self._size
        with hold_canvas():
            base = self.canvas[0]
            base.clear()
            base.draw_image(self._input, 0, 0, width, height)  # scaled to the result's size
            self._draw_result_and_divider()

    def _draw_result_and_divider(self) -> None:
        if self._result is None:
            return
        width, height = self._size
        x = self.split * width
        top: Any = self.canvas[1]
        top.clear()
        top.save()
        top.begin_path()
        top.rect(x, 0, width - x, height)
        top.clip()
        top.draw_image(self._result, 0, 0, width, height)
        top.restore()
        line: Any = self.canvas[2]
        line.clear()
        line.fill_style = "#ffffff"
        line.fill_rect(x - 1, 0, 2, height)
        line.stroke_style = "#2f6fde"
        line.line_width = 1.5
        line.fill_rect(x - _KNOB_PX, height / 2 - 2 * _KNOB_PX, 2 * _KNOB_PX, 4 * _KNOB_PX)
        line.stroke_rect(x - _KNOB_PX, height / 2 - 2 * _KNOB_PX, 2 * _KNOB_PX, 4 * _KNOB_PX)
        line.font = "12px sans-serif"
        line.text_baseline = "top"
        for label, lx in (("input", 8), ("result", width - 52)):
            line.fill_style = "rgba(20, 24, 36, 0.72)"
            line.fill_rect(lx - 4, 6, 52, 18)
            line.fill_style = "#ffffff"
            line.fill_text(label, lx, 9)

    @reported
    def _on_mouse_down(self, x: float, y: float) -> None:
        self._dragging = True
        self.move(x / self._size[0])

    @reported
    def _on_mouse_move(self, x: float, y: float) -> None:
        if self._dragging:
            self.move(x / self._size[0])

    @reported
    def _on_mouse_up(self, x: float, y: float) -> None:
        self._dragging = False

    @reported
    def _on_key_down(self, key: str, shift: bool, ctrl: bool, meta: bool) -> None:
        step = _STEP * (5 if shift else 1)
        if key == "ArrowLeft":
            self.move(self.split - step)
        elif key == "ArrowRight":
            self.move(self.split + step)
