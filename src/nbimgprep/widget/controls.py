"""The widget's controls and their layout: buttons, crop fields, aspect presets, panels.

Built here, wired in :class:`~nbimgprep.widget.ImagePrep`. Buttons are attributes of
:class:`Buttons`, referred to by identity (``buttons.upscale``), so a label can change
without touching any logic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import ipywidgets as W

from ..crop_geometry import ASPECT_PRESETS
from ..thumbnails import Thumbnail
from .compare import CompareView
from .markup import EMPTY_RESULT, header_html, input_label_html, result_label_html, style_html

if TYPE_CHECKING:
    from ..results import Result

__all__ = ["Buttons", "Controls"]


def _button(label: str, icon: str, style: str, tip: str) -> W.Button:
    b = W.Button(description=label, icon=icon, button_style=style, tooltip=tip)
    b.layout = W.Layout(width="auto")
    b.add_class("nbip-btn")
    return b


@dataclass(frozen=True)
class Buttons:
    """Every button of the widget, by what it does."""

    apply_crop: W.Button
    reset: W.Button
    remove_background: W.Button
    upscale: W.Button
    face_detail: W.Button
    redo: W.Button
    cancel: W.Button
    use_result: W.Button

    @classmethod
    def build(cls) -> Buttons:
        use_result = _button("Use result", "arrow-left", "success", "Make the result the new input")
        use_result.add_class("nbip-use")
        return cls(
            apply_crop=_button(
                "Apply crop", "crop", "primary", "Make the box the new image (Enter)"
            ),
            reset=_button("Reset", "undo", "", "Back to the original image"),
            remove_background=_button(
                "Remove background", "magic", "", "Cut out the subject (PNG with alpha)"
            ),
            upscale=_button("Upscale", "expand", "", "Make the image larger"),
            face_detail=_button("Face detail", "user", "", "Restore and sharpen faces"),
            redo=_button("Redo", "refresh", "", "Run the last operation again, fresh"),
            cancel=_button("Cancel", "stop", "", "Stop the running operation"),
            use_result=use_result,
        )

    def each(self) -> tuple[W.Button, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))

    def update(self, *, busy: bool, has_box: bool, has_result: bool, can_redo: bool) -> None:
        """Enable what can be done now: nothing but Cancel while an operation runs."""
        for b in self.each():
            b.disabled = busy
        self.cancel.disabled = not busy
        self.cancel.button_style = "danger" if busy else ""
        self.apply_crop.disabled = busy or not has_box
        self.use_result.disabled = busy or not has_result
        self.redo.disabled = busy or not can_redo


class Controls:
    """The widgets around the canvas: header, crop bar, result panel, operations, status."""

    def __init__(self, report: Callable[[BaseException], None]) -> None:
        self.style = W.HTML(style_html(), layout=W.Layout(display="none"))
        self.header = W.HTML()
        self.before_label = W.HTML()
        self.after_label = W.HTML()
        self.after_image = W.Image(format="png", layout=W.Layout(display="none"))
        self.after_image.add_class("nbip-after")
        self.after_image.add_class("nbip-checker")
        self.after_empty = W.HTML(EMPTY_RESULT)
        self.aspect = W.ToggleButtons(
            options=list(ASPECT_PRESETS),
            value="Free",
            tooltips=["No fixed ratio", "Square", "Portrait 4:5", "Photo 3:2", "Wide 16:9"],
            layout=W.Layout(width="auto"),
        )
        self.aspect.add_class("nbip-aspect")
        self.lock = W.Checkbox(
            value=False, description="Lock ratio", indent=False, layout=W.Layout(width="auto")
        )
        self.fields = {
            name: W.IntText(description=name, layout=W.Layout(width="86px"))
            for name in ("x", "y", "w", "h")
        }
        for f in self.fields.values():
            f.add_class("nbip-field")
            f.style.description_width = "14px"
        self.scale = W.ToggleButtons(
            options=[("2x", 2), ("4x", 4)], value=2, layout=W.Layout(width="auto")
        )
        self.scale.add_class("nbip-scale")
        self.buttons = Buttons.build()
        self.status = W.HTML()
        self.history = W.HTML()
        self.compare = CompareView(report)
        self._result_size = (1, 1)

    def show_input(self, name: str, sha256: str, size: tuple[int, int], backend: str) -> None:
        """The header (name, hash, backend) and the input's label (its size)."""
        self.header.value = header_html(name, sha256, backend)
        self.before_label.value = input_label_html(size)

    def show_result(
        self,
        result: Result | None,
        preview: Thumbnail | None,
        input_preview: Thumbnail | None,
        compare: bool,
    ) -> None:
        """The result panel shows ``preview`` (an encoded image), or the empty hint; with
        ``compare``, the comparison with ``input_preview`` in its place."""
        self.after_label.value = result_label_html(result)
        if preview is None:
            self.after_image.layout.display = "none"
            self.after_empty.layout.display = None
            self.compare.show(None, (1, 1), None, False)
            return
        self.after_image.format = preview.format
        self.after_image.value = preview.data
        self._result_size = (preview.width, preview.height)
        self.after_empty.layout.display = "none"
        self.show_compare(input_preview, compare)

    def show_compare(self, input_preview: Thumbnail | None, on: bool) -> None:
        """Switch the result panel between the result alone and the comparison."""
        shown = self.compare.show(self.after_image, self._result_size, input_preview, on)
        self.after_image.layout.display = "none" if shown else None

    def children(self, canvas: Any) -> list[Any]:
        b = self.buttons

        def row() -> W.Layout:
            return W.Layout(align_items="center", flex_flow="row wrap")

        crop_bar = W.HBox([self.aspect, self.lock], layout=row())
        crop_bar.add_class("nbip-row")
        box_bar = W.HBox([*self.fields.values(), b.apply_crop, b.reset], layout=row())
        box_bar.add_class("nbip-row")
        before = W.VBox(
            [self.before_label, canvas, crop_bar, box_bar],
            layout=W.Layout(flex="1 1 0", min_width="280px"),
        )
        before.add_class("nbip-panel")
        after = W.VBox(
            [
                self.after_label,
                self.after_empty,
                self.after_image,
                self.compare.canvas,
                W.HBox([b.use_result, self.compare.toggle], layout=row()),
            ],
            layout=W.Layout(flex="1 1 0", min_width="280px"),
        )
        after.add_class("nbip-panel")
        panels = W.HBox([before, after], layout=W.Layout(align_items="flex-start"))
        panels.add_class("nbip-panels")
        upscale = W.HBox([b.upscale, self.scale])
        upscale.add_class("nbip-upscale")
        separator = W.HTML('<span class="nbip-sep"></span>')
        ops = W.HBox(
            [b.remove_background, upscale, b.face_detail, separator, b.redo, b.cancel],
            layout=row(),
        )
        ops.add_class("nbip-ops")
        return [self.style, self.header, panels, ops, self.status, self.history]
