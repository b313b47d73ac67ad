"""The input panel's interaction: browser events and crop controls in, crop box out.

Canvas events (mouse, keys, a new browser view) and the x/y/w/h fields, aspect presets and
lock are translated here into :class:`~nbimgprep.widget.selection.CropSelection` calls; the
resulting box is handed to the host widget's ``crop`` trait, whose observer draws it. No
geometry is computed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .controls import Controls
from .layers import ImageLayers
from .running import reported
from .selection import CropSelection

__all__ = ["CropHost", "CropInput"]


class CropHost(Protocol):
    """What the crop panel needs of the widget it sits in."""

    crop: Any
    busy: bool

    def apply_crop(self) -> object: ...

    def _show_error(self, exc: BaseException) -> None: ...

    def _update_buttons(self) -> None: ...


class CropInput:
    """Connects the canvas and crop controls to a :class:`CropSelection` and its host."""

    def __init__(
        self, host: CropHost, layers: ImageLayers, selection: CropSelection, controls: Controls
    ) -> None:
        self._host = host
        self._layers = layers
        self._selection = selection
        self._controls = controls
        self._syncing = False
        canvas = layers.canvas
        canvas.on_mouse_down(self._on_mouse_down)
        canvas.on_mouse_move(self._on_mouse_move)
        canvas.on_mouse_up(self._on_mouse_up)
        canvas.on_mouse_out(self._on_mouse_out)
        canvas.on_key_down(self._on_key_down)
        canvas.on_client_ready(self._on_client_ready)
        controls.aspect.observe(self._on_aspect, names="value")
        controls.lock.observe(self._on_lock, names="value")
        for f in controls.fields.values():
            f.observe(self._on_field, names="value")

    def _show_error(self, exc: BaseException) -> None:
        self._host._show_error(exc)

    def sync_fields(self) -> None:
        """Show the box in the x/y/w/h fields and the aspect controls (no events back)."""
        c, sel = self._controls, self._selection
        self._syncing = True
        try:
            for name, value in zip("xywh", self._host.crop or (0, 0, 0, 0), strict=True):
                c.fields[name].value = value
            c.aspect.value = sel.aspect
            c.lock.value = sel.locked
        finally:
            self._syncing = False
        self._host._update_buttons()

    # -- canvas events --------------------------------------------------------------------

    @reported
    def _on_client_ready(self) -> None:
        """A browser view appeared (new tab, page reload): it starts blank, so redraw."""
        self._layers.redraw(self._host.crop)

    @reported
    def _on_mouse_down(self, x: float, y: float) -> None:
        if not self._host.busy:
            self._selection.press(x, y)

    @reported
    def _on_mouse_move(self, x: float, y: float) -> None:
        if not self._selection.dragging:
            self._layers.set_cursor(self._selection.hover(x, y))
        elif self._selection.drag(x, y):
            self._host.crop = self._selection.box

    @reported
    def _on_mouse_up(self, x: float, y: float) -> None:
        if self._selection.dragging:
            self._host.crop = self._selection.release()
            self.sync_fields()

    @reported
    def _on_mouse_out(self, x: float, y: float) -> None:
        """Leaving the canvas ends a drag where it is (a release outside is never seen)."""
        if self._selection.leave():
            self.sync_fields()
        self._layers.set_cursor("outside")

    @reported
    def _on_key_down(self, key: str, shift: bool, ctrl: bool, meta: bool) -> None:
        if self._selection.key(key, shift) == "apply":
            self._host.apply_crop()
        else:
            self._host.crop = self._selection.box

    # -- crop controls --------------------------------------------------------------------

    @reported
    def _on_field(self, change: Mapping[str, Any]) -> None:
        if self._syncing:
            return
        values = [self._controls.fields[n].value for n in "xywh"]
        if values[2] <= 0 or values[3] <= 0:
            return  # still typing; an empty box is not a box
        self._host.crop = values

    @reported
    def _on_aspect(self, change: Mapping[str, Any]) -> None:
        if not self._syncing:
            self._selection.choose_aspect(change["new"])
            self._show_selection()

    @reported
    def _on_lock(self, change: Mapping[str, Any]) -> None:
        if not self._syncing:
            self._selection.lock(change["new"])
            self._show_selection()

    def _show_selection(self) -> None:
        self._host.crop = self._selection.box
        self.sync_fields()
