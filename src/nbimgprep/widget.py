"""ImagePrep: look at an image, crop it by dragging, press a button, see before and after.

The widget is a thin face over :class:`~nbimgprep.processor.Processor`: every button calls
the same public method a script would (``await prep.apply("upscale", scale=2)``), so what
the tests drive without a browser is what a person drives with a mouse.

Why it is built the way it is:

* Pixels never travel as widget state or ``put_image_data``. The input is shown as one
  preview (at most ``max_preview`` px on its long side), encoded once as JPEG (PNG when it
  has transparency) into an ``ipywidgets.Image`` that the canvas draws by reference. A
  redraw (a new browser tab, a page reload) costs a few bytes, not megabytes.
* The crop box lives on its own canvas layer. A mouse move while dragging does a few
  arithmetic operations (:mod:`nbimgprep.crop_geometry`) and sends one batched message that
  redraws only that layer; the x/y/w/h fields are synced when the drag ends.
* Exceptions raised in widget callbacks are invisible in Jupyter. Every handler here reports
  failures in the status line, with what to do next, and leaves the controls usable.
"""

from __future__ import annotations

import asyncio
import html
import io
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import ipywidgets as W
from ipycanvas import MultiCanvas, hold_canvas
from PIL import Image

from .crop_geometry import (
    ASPECT_PRESETS,
    Box,
    Fit,
    Handle,
    Ratio,
    box_from_points,
    box_to_canvas,
    clamp_crop,
    fit,
    hit_test,
    move_box,
    nudge,
    resize_box,
    to_image,
    with_aspect,
)
from .errors import NbimgprepError, OperationError, ProcessingCancelled
from .images import ImageRef
from .operations import get_operation

if TYPE_CHECKING:
    from .processor import Processor, ProgressEvent, Result, Source

__all__ = ["HistoryStep", "ImagePrep"]

log = logging.getLogger(__name__)

#: Operation buttons: label -> operation name.
OPERATION_BUTTONS = {
    "Remove background": "remove_background",
    "Upscale": "upscale",
    "Face detail": "face_detail",
}
OPERATION_LABELS = {op: label for label, op in OPERATION_BUTTONS.items()}
JPEG_QUALITY = 85
TIMES = "\u00d7"  # the multiplication sign, as in 640 x 480
# A drag shorter than this (canvas px) is a click: it clears the box instead of drawing one.
CLICK_SLOP = 3.0
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

F = TypeVar("F", bound=Callable[..., None])


@dataclass(frozen=True)
class HistoryStep:
    """One step of the chain the widget has run: a crop, an operation, or "use result"."""

    operation: str
    params: Mapping[str, Any]
    #: True for a cache hit, False for a fresh call, None for local steps (crop, use result).
    cache_hit: bool | None
    elapsed: float
    #: Short hash of the image this step produced.
    image_hash: str
    backend: str = "local"
    width: int = 0
    height: int = 0

    def describe(self) -> str:
        """One line for the history list."""
        what = _op_title(self.operation, self.params)
        size = f"{self.width}{TIMES}{self.height}"
        if self.cache_hit is None:
            return f"{what} → {size} #{self.image_hash}"
        how = _timing(self.cache_hit, self.elapsed, self.backend)
        return f"{what} → {size} #{self.image_hash} · {how}"


@dataclass
class _Drag:
    """A drag in progress: what was grabbed, where, and the box as it was then."""

    handle: Handle | None  # None: drawing a new box
    start: tuple[float, float]  # canvas px
    anchor: tuple[float, float]  # image px
    box: Box | None
    moved: bool = False


@dataclass
class _Preview:
    """The encoded preview of the current input, and its geometry."""

    fit: Fit
    widget: Any
    nbytes: int
    encode_seconds: float
    image_size: tuple[int, int] = field(default=(0, 0))


def _op_title(operation: str, params: Mapping[str, Any]) -> str:
    if operation == "crop":
        x, y, w, h = params["box"]
        return f"crop ({x}, {y}, {w}, {h})"
    if operation == "upscale":
        return f"upscale {params.get('scale', 2)}x"
    return operation.replace("_", " ")


def _timing(cache_hit: bool, elapsed: float, backend: str) -> str:
    if cache_hit:
        return f"cache hit · {elapsed * 1000:.0f} ms · {backend}"
    return f"fresh · {elapsed:.1f} s · {backend}"


def encode_preview(img: Image.Image, max_preview: int) -> tuple[bytes, str, Fit]:
    """The one preview the browser gets: at most ``max_preview`` px long, JPEG or PNG.

    JPEG for opaque images (a 1024 px photo is ~100 KB); PNG when there is transparency,
    so a removed background stays visible as such.
    """
    geometry = fit(img.size, max_preview)
    small = img
    if (geometry.width, geometry.height) != img.size:
        small = img.resize(
            (geometry.width, geometry.height), Image.Resampling.LANCZOS, reducing_gap=1.5
        )
    out = io.BytesIO()
    if small.mode in ("RGBA", "LA"):
        small.save(out, format="PNG", compress_level=3)
        return out.getvalue(), "png", geometry
    small.convert("RGB").save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue(), "jpeg", geometry


def _reported(method: F) -> F:
    """Run a widget callback so that a failure shows in the status line, not nowhere."""

    def wrapper(self: ImagePrep, *args: Any) -> None:
        try:
            method(self, *args)
        except Exception as exc:
            self._show_error(exc)

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper  # type: ignore[return-value]


class ImagePrep(W.VBox):  # type: ignore[misc]
    """Crop and process one image in a notebook, through the cache.

    >>> prep = ImagePrep("photo.jpg", Processor(backend="local"))   # doctest: +SKIP
    >>> prep                                   # shows the widget          # doctest: +SKIP
    >>> prep.crop = (100, 50, 800, 600)        # x, y, w, h in image px   # doctest: +SKIP
    >>> await prep.apply("upscale", scale=2)   # same as the button       # doctest: +SKIP

    Mouse: drag to draw a box, drag inside it to move it, drag a corner or an edge to
    resize. Keys (click the image first): arrows nudge by 1 px (Shift: 10), Enter applies
    the crop, Esc clears the box.
    """

    def __init__(
        self,
        source: Source,
        processor: Processor | None = None,
        crop: tuple[int, int, int, int] | None = None,
        max_preview: int = 1024,
    ) -> None:
        if processor is None:
            from .processor import Processor

            processor = Processor()
        if max_preview < 16:
            raise OperationError(f"max_preview={max_preview} is too small; use 256 or more.")
        self._proc = processor
        self._max_preview = int(max_preview)
        self._original = processor.image(source)
        self._ref = self._original
        self._image = self._ref.open()
        self._box: Box | None = None
        self._ratio: Ratio | None = None
        self._drag: _Drag | None = None
        self._cursor: Handle = "outside"
        self._result: Result | None = None
        self._result_input: ImageRef | None = None
        self._history: list[HistoryStep] = []
        self._last: tuple[ImageRef, str, dict[str, Any]] | None = None
        self._running: asyncio.Task[Any] | None = None
        self._cancel_asked = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._syncing_fields = False
        self._build()
        super().__init__(children=self._children(), layout=W.Layout(width="100%"))
        self.add_class("nbip-root")
        self._set_input(self._ref, self._image)
        if crop is not None:
            self.crop = crop
        self._show_status("idle", "Drag on the image to select a crop, or press an operation.")

    # -- public API ---------------------------------------------------------------------

    @property
    def crop(self) -> Box | None:
        """The crop box ``(x, y, w, h)`` in original-image pixels, or None for no box."""
        return self._box

    @crop.setter
    def crop(self, box: tuple[int, int, int, int] | None) -> None:
        if box is None:
            self._box = None
        else:
            if len(box) != 4:
                raise OperationError(f"crop must be (x, y, w, h) or None, got {box!r}.")
            self._box = clamp_crop(tuple(float(v) for v in box), self._image.size)  # type: ignore[arg-type]
        self._box_changed()

    @property
    def image(self) -> Image.Image:
        """The current input image (after any crop or "Use result"), full size."""
        return self._image

    @property
    def image_ref(self) -> ImageRef:
        """The current input as an :class:`~nbimgprep.images.ImageRef`."""
        return self._ref

    @property
    def result(self) -> Result | None:
        """The last operation's :class:`~nbimgprep.processor.Result`, or None."""
        return self._result

    @property
    def history(self) -> list[HistoryStep]:
        """The steps run so far, oldest first."""
        return list(self._history)

    @property
    def busy(self) -> bool:
        """True while an operation runs."""
        return self._running is not None

    @property
    def status_text(self) -> str:
        """The status line as plain text (what the person reads)."""
        return html.unescape(re.sub(r"<[^>]+>", "", self.status.value)).strip()

    async def apply(self, operation: str, *, refresh: bool = False, **params: Any) -> Result:
        """Run ``operation`` on the current input through the cache; the buttons call this.

        Raises what the processor raises (after showing it in the widget), and
        :class:`~nbimgprep.errors.ProcessingCancelled` when Cancel is pressed.
        """
        get_operation(operation)  # unknown names fail here, before anything changes
        return await self._run(self._ref, operation, dict(params), refresh)

    async def redo(self) -> Result:
        """Run the last operation again, fresh (``refresh=True``): for a result you dislike."""
        if self._last is None:
            raise OperationError("Nothing to redo yet: run an operation first.")
        ref, operation, params = self._last
        return await self._run(ref, operation, params, True)

    async def wait(self) -> None:
        """Wait until the operations started by buttons have finished (scripts, tests)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    def cancel(self) -> None:
        """Cancel the running operation (and its fal.ai request); nothing is cached."""
        if self._running is not None and not self._running.done():
            self._cancel_asked = True
            self._running.cancel()

    def apply_crop(self) -> ImageRef:
        """Make the crop box the new input: a new image, with its own hash."""
        if self.busy:
            raise OperationError("An operation is running: wait for it, or press Cancel.")
        if self._box is None:
            raise OperationError("No crop box: drag on the image to draw one first.")
        box = self._box
        started = time.perf_counter()
        ref = self._ref.crop(box)
        image = ref.open()
        self._box = None
        self._set_input(ref, image)
        self._add_step(
            HistoryStep(
                "crop",
                {"box": box},
                None,
                time.perf_counter() - started,
                ref.sha256[:12],
                width=image.width,
                height=image.height,
            )
        )
        self._show_status(
            "ok", f"Cropped to {box[2]}{TIMES}{box[3]} px: a new image #{ref.sha256[:12]}."
        )
        return ref

    def use_result(self) -> ImageRef:
        """Make the last result the new input, so operations chain (each step cached)."""
        if self.busy:
            raise OperationError("An operation is running: wait for it, or press Cancel.")
        if self._result is None:
            raise OperationError("No result yet: run an operation first.")
        ref = self._proc.image(self._result.path)
        image = ref.open()
        self._box = None
        self._set_input(ref, image)
        self._add_step(
            HistoryStep(
                "use_result",
                {},
                None,
                0.0,
                ref.sha256[:12],
                width=image.width,
                height=image.height,
            )
        )
        self._show_status("ok", f"The result is the new input #{ref.sha256[:12]}.")
        return ref

    def reset(self) -> None:
        """Back to the original image: no box, no result (the history is kept)."""
        if self.busy:
            raise OperationError("An operation is running: wait for it, or press Cancel.")
        self._box = None
        self._set_result(None, None)
        self._set_input(self._original, self._original.open())
        self._show_status("idle", "Back to the original image.")

    def save(self, path: str | Path) -> Path:
        """Save the last result (or the current input when there is none) to ``path``.

        The format follows the suffix; a result saved with its own format is copied byte
        for byte.
        """
        target = Path(path).expanduser()
        if self._result is not None:
            source_path = self._result.path
            if target.suffix.lower() == source_path.suffix.lower():
                target.write_bytes(source_path.read_bytes())
                return target
            img = self._result.image
        else:
            img = self._image
        if target.suffix.lower() in (".jpg", ".jpeg") and img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        img.save(target)
        return target

    def __repr__(self) -> str:
        w, h = self._image.size
        return f"<ImagePrep {self._ref.name!r} {w}x{h} #{self._ref.sha256[:12]}>"

    # -- building -----------------------------------------------------------------------

    def _build(self) -> None:
        self.style_html = W.HTML(_CSS, layout=W.Layout(display="none"))
        self.header = W.HTML()
        self.canvas = MultiCanvas(2, width=1, height=1)
        self.canvas.add_class("nbip-canvas")
        self.canvas.add_class("nbip-cur-crosshair")
        self.canvas.on_mouse_down(self._on_mouse_down)
        self.canvas.on_mouse_move(self._on_mouse_move)
        self.canvas.on_mouse_up(self._on_mouse_up)
        self.canvas.on_mouse_out(self._on_mouse_out)
        self.canvas.on_key_down(self._on_key_down)
        self.canvas.on_client_ready(self._on_client_ready)
        self.before_label = W.HTML()
        self.after_label = W.HTML()
        self.after_image = W.Image(format="png", layout=W.Layout(display="none"))
        self.after_image.add_class("nbip-after")
        self.after_empty = W.HTML(
            '<div class="nbip-empty"><div>Results appear here.<br>'
            "Press <b>Remove background</b>, <b>Upscale</b> or <b>Face detail</b>.</div></div>"
        )

        self.aspect = W.ToggleButtons(
            options=list(ASPECT_PRESETS),
            value="Free",
            tooltips=["No fixed ratio", "Square", "Portrait 4:5", "Photo 3:2", "Wide 16:9"],
            layout=W.Layout(width="auto"),
        )
        self.aspect.add_class("nbip-aspect")
        self.aspect.observe(self._on_aspect, names="value")
        self.lock = W.Checkbox(
            value=False, description="Lock ratio", indent=False, layout=W.Layout(width="auto")
        )
        self.lock.observe(self._on_lock, names="value")
        self.fields = {
            name: W.IntText(description=name, layout=W.Layout(width="86px"))
            for name in ("x", "y", "w", "h")
        }
        for f in self.fields.values():
            f.add_class("nbip-field")
            f.style.description_width = "14px"
            f.observe(self._on_field, names="value")

        self.buttons: dict[str, W.Button] = {}

        def button(label: str, icon: str, style: str, tip: str) -> W.Button:
            b = W.Button(description=label, icon=icon, button_style=style, tooltip=tip)
            b.layout = W.Layout(width="auto")
            b.add_class("nbip-btn")
            self.buttons[label] = b
            return b

        button("Apply crop", "crop", "primary", "Make the box the new image (Enter)").on_click(
            self._reported_click(self._click_apply_crop)
        )
        button("Reset", "undo", "", "Back to the original image").on_click(
            self._reported_click(lambda: self.reset())
        )
        button("Remove background", "magic", "", "Cut out the subject (PNG with alpha)").on_click(
            self._reported_click(lambda: self._schedule(self.apply("remove_background")))
        )
        button("Upscale", "expand", "", "Make the image larger").on_click(
            self._reported_click(
                lambda: self._schedule(self.apply("upscale", scale=self.scale.value))
            )
        )
        button("Face detail", "user", "", "Restore and sharpen faces").on_click(
            self._reported_click(lambda: self._schedule(self.apply("face_detail")))
        )
        button("Redo", "refresh", "", "Run the last operation again, fresh").on_click(
            self._reported_click(lambda: self._schedule(self.redo()))
        )
        button("Cancel", "stop", "", "Stop the running operation").on_click(
            self._reported_click(self.cancel)
        )
        button("Use result", "arrow-left", "success", "Make the result the new input").on_click(
            self._reported_click(lambda: self.use_result())
        )
        self.scale = W.ToggleButtons(
            options=[("2x", 2), ("4x", 4)], value=2, layout=W.Layout(width="auto")
        )
        self.scale.add_class("nbip-scale")
        self.status = W.HTML()
        self.history_html = W.HTML()
        self._set_busy(False)

    def _children(self) -> list[Any]:
        b = self.buttons
        crop_bar = W.HBox(
            [self.aspect, self.lock],
            layout=W.Layout(align_items="center", flex_flow="row wrap"),
        )
        crop_bar.add_class("nbip-row")
        box_bar = W.HBox(
            [*self.fields.values(), b["Apply crop"], b["Reset"]],
            layout=W.Layout(align_items="center", flex_flow="row wrap"),
        )
        box_bar.add_class("nbip-row")
        before = W.VBox(
            [self.before_label, self.canvas, crop_bar, box_bar],
            layout=W.Layout(flex="1 1 0", min_width="280px"),
        )
        before.add_class("nbip-panel")
        after = W.VBox(
            [self.after_label, self.after_empty, self.after_image, b["Use result"]],
            layout=W.Layout(flex="1 1 0", min_width="280px"),
        )
        after.add_class("nbip-panel")
        panels = W.HBox([before, after], layout=W.Layout(align_items="flex-start"))
        panels.add_class("nbip-panels")
        upscale = W.HBox([b["Upscale"], self.scale])
        upscale.add_class("nbip-upscale")
        ops = W.HBox(
            [
                b["Remove background"],
                upscale,
                b["Face detail"],
                W.HTML('<span class="nbip-sep"></span>'),
                b["Redo"],
                b["Cancel"],
            ],
            layout=W.Layout(align_items="center", flex_flow="row wrap"),
        )
        ops.add_class("nbip-ops")
        return [self.style_html, self.header, panels, ops, self.status, self.history_html]

    # -- input, preview and drawing -----------------------------------------------------

    def _set_input(self, ref: ImageRef, image: Image.Image) -> None:
        """Show a new input: encode its preview once, resize the canvas, redraw."""
        self._ref = ref
        self._image = image
        started = time.perf_counter()
        data, fmt, geometry = encode_preview(image, self._max_preview)
        seconds = time.perf_counter() - started
        widget = W.Image(value=data, format=fmt, layout=W.Layout(display="none"))
        old = getattr(self, "_preview", None)
        self._preview = _Preview(geometry, widget, len(data), seconds, image.size)
        self.canvas.width = geometry.width
        self.canvas.height = geometry.height
        self.canvas.layout = W.Layout(width="100%", max_width=f"{geometry.width}px", height="auto")
        if old is not None:
            old.widget.close()
        self._ratio_follow_box()
        self._redraw()
        self._update_header()
        self._update_fields()
        self.before_label.value = (
            f'<div class="nbip-label"><b>Input</b> <span>{image.width}{TIMES}{image.height} px'
            f"</span></div>"
        )

    def _update_header(self) -> None:
        name = html.escape(_short_name(self._ref.name))
        self.header.value = (
            '<div class="nbip-header"><span class="nbip-title">ImagePrep</span>'
            f'<span class="nbip-name" title="{html.escape(self._ref.name)}">{name}</span>'
            f'<span class="nbip-hash" title="SHA-256 of the current input">'
            f"#{self._ref.sha256[:12]}</span>"
            f'<span class="nbip-backend">{html.escape(self._proc.backend.name)} backend</span>'
            "</div>"
        )

    def _redraw(self) -> None:
        """Draw everything: the preview (by reference, no pixels sent) and the overlay."""
        geometry = self._preview.fit
        with hold_canvas():
            base = self.canvas[0]
            base.clear()
            base.draw_image(self._preview.widget, 0, 0, geometry.width, geometry.height)
            self._overlay_commands()

    def _draw_overlay(self) -> None:
        """Redraw the crop layer only, in one message: the cheap path of every mouse move."""
        with hold_canvas():
            self._overlay_commands()

    def _overlay_commands(self) -> None:
        """The crop layer: dimmed outside, the box, thirds, handles, and its size in px."""
        layer = self.canvas[1]
        geometry = self._preview.fit
        cw, ch = geometry.width, geometry.height
        layer.clear()
        if self._box is not None:
            x, y, w, h = box_to_canvas(self._box, geometry.scale)
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
            s = 9
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
            label = f"{self._box[2]} {TIMES} {self._box[3]}"
            ty = y + h + 6 if y + h + 26 <= ch else max(y - 26, 2)
            tw = 9 + 7.5 * len(label)
            tx = min(max(x, 2), cw - tw - 2)
            layer.fill_style = "rgba(20, 24, 36, 0.82)"
            layer.fill_rect(tx, ty, tw, 20)
            layer.fill_style = "#ffffff"
            layer.font = "12px sans-serif"
            layer.text_baseline = "middle"
            layer.fill_text(label, tx + 6, ty + 10)

    @_reported
    def _on_client_ready(self) -> None:
        """A browser view appeared (new tab, page reload): it starts blank, so redraw."""
        self._redraw()

    # -- mouse and keys -----------------------------------------------------------------

    def _image_point(self, x: float, y: float) -> tuple[float, float]:
        return to_image((x, y), self._preview.fit.scale)

    def _locked_ratio(self) -> Ratio | None:
        return self._ratio if self.lock.value else None

    @_reported
    def _on_mouse_down(self, x: float, y: float) -> None:
        if self.busy:
            return
        handle = hit_test(self._box, (x, y), self._preview.fit.scale)
        point = self._image_point(x, y)
        if handle == "outside":
            self._drag = _Drag(None, (x, y), point, self._box)
        else:
            self._drag = _Drag(handle, (x, y), point, self._box)

    @_reported
    def _on_mouse_move(self, x: float, y: float) -> None:
        drag = self._drag
        if drag is None:
            self._set_cursor(hit_test(self._box, (x, y), self._preview.fit.scale))
            return
        if not drag.moved:
            if abs(x - drag.start[0]) < CLICK_SLOP and abs(y - drag.start[1]) < CLICK_SLOP:
                return
            drag.moved = True
        size = self._image.size
        point = self._image_point(x, y)
        if drag.handle is None:
            self._box = box_from_points(drag.anchor, point, size, self._locked_ratio())
        elif drag.handle == "inside" and drag.box is not None:
            dx, dy = point[0] - drag.anchor[0], point[1] - drag.anchor[1]
            self._box = move_box(drag.box, dx, dy, size)
        elif drag.box is not None:
            self._box = resize_box(drag.box, drag.handle, point, size, self._locked_ratio())
        self._draw_overlay()

    @_reported
    def _on_mouse_up(self, x: float, y: float) -> None:
        drag, self._drag = self._drag, None
        if drag is None:
            return
        if not drag.moved and drag.handle is None:
            self._box = None  # a click outside the box clears it
        self._box_changed()

    @_reported
    def _on_mouse_out(self, x: float, y: float) -> None:
        """Leaving the canvas ends a drag where it is (a release outside is never seen)."""
        if self._drag is not None:
            drag, self._drag = self._drag, None
            if drag.moved:
                self._box_changed()
        self._set_cursor("outside")

    @_reported
    def _on_key_down(self, key: str, shift: bool, ctrl: bool, meta: bool) -> None:
        if key.startswith("Arrow") and self._box is not None:
            self._box = nudge(self._box, key, shift, self._image.size)
            self._box_changed()
        elif key == "Enter" and self._box is not None:
            self.apply_crop()
        elif key == "Escape":
            self._drag = None
            self.crop = None

    def _set_cursor(self, handle: Handle) -> None:
        """Change the pointer only when the zone under it changes (one message, not per move)."""
        if CURSORS[handle] == CURSORS[self._cursor]:
            return
        self.canvas.remove_class(f"nbip-cur-{CURSORS[self._cursor]}")
        self.canvas.add_class(f"nbip-cur-{CURSORS[handle]}")
        self._cursor = handle

    # -- crop controls ------------------------------------------------------------------

    def _box_changed(self) -> None:
        self._draw_overlay()
        self._update_fields()

    def _update_fields(self) -> None:
        self._syncing_fields = True
        try:
            values = self._box or (0, 0, 0, 0)
            for name, value in zip(("x", "y", "w", "h"), values, strict=True):
                self.fields[name].value = value
        finally:
            self._syncing_fields = False
        self._set_busy(self.busy)

    @_reported
    def _on_field(self, change: Mapping[str, Any]) -> None:
        if self._syncing_fields:
            return
        values = [self.fields[n].value for n in ("x", "y", "w", "h")]
        if values[2] <= 0 or values[3] <= 0:
            return  # still typing; an empty box is not a box
        self._box = clamp_crop(tuple(float(v) for v in values), self._image.size)  # type: ignore[arg-type]
        self._box_changed()

    @_reported
    def _on_aspect(self, change: Mapping[str, Any]) -> None:
        self._ratio = ASPECT_PRESETS[change["new"]]
        if self._ratio is not None:
            self._syncing_fields = True
            self.lock.value = True
            self._syncing_fields = False
            if self._box is not None:
                self._box = with_aspect(self._box, self._ratio, self._image.size)
                self._box_changed()
        elif not self._syncing_fields:
            self.lock.value = False

    @_reported
    def _on_lock(self, change: Mapping[str, Any]) -> None:
        if self._syncing_fields:
            return
        if change["new"]:
            self._ratio_follow_box()
        else:
            self._syncing_fields = True
            self.aspect.value = "Free"
            self._syncing_fields = False
            self._ratio = None

    def _ratio_follow_box(self) -> None:
        """Lock with "Free": keep the current box's own ratio."""
        if self.lock.value and self.aspect.value == "Free" and self._box is not None:
            self._ratio = (self._box[2], self._box[3])

    # -- running operations -------------------------------------------------------------

    async def _run(
        self, ref: ImageRef, operation: str, params: dict[str, Any], refresh: bool
    ) -> Result:
        if self._running is not None:
            raise OperationError(
                "An operation is already running: wait for it, or press Cancel first."
            )
        title = _op_title(operation, params)
        self._last = (ref, operation, params)
        self._cancel_asked = False
        task = asyncio.ensure_future(
            self._proc.run(operation, ref, refresh=refresh, on_progress=self._on_progress, **params)
        )
        self._running = task
        self._set_busy(True)
        verb = "Running again, fresh:" if refresh else "Running"
        self._show_status("busy", f"{verb} {title} on the {self._proc.backend.name} backend…")
        try:
            result = await task
        except asyncio.CancelledError:
            if not self._cancel_asked:
                raise  # our caller was cancelled, not the operation
            self._show_status("idle", f"Cancelled {title}: nothing was cached.")
            raise ProcessingCancelled(
                f"{title} was cancelled; nothing was cached. Run it again when ready."
            ) from None
        except ProcessingCancelled as exc:
            self._show_status("idle", f"Cancelled {title}: nothing was cached.")
            raise exc
        except Exception as exc:
            self._show_error(exc, title)
            raise
        finally:
            self._running = None
            self._set_busy(False)
        self._set_result(result, ref)
        self._add_step(
            HistoryStep(
                operation,
                dict(result.params),
                result.cache_hit,
                result.elapsed,
                self._proc.image(result.path).sha256[:12],
                result.backend,
                result.width,
                result.height,
            )
        )
        self._show_status(
            "hit" if result.cache_hit else "fresh",
            f"{title}: {_timing(result.cache_hit, result.elapsed, result.backend)}",
        )
        return result

    def _on_progress(self, event: ProgressEvent) -> None:
        """Queue position and logs while a call waits (fal.ai reports them)."""
        if self._running is None:
            return
        if event.kind == "queued":
            where = f"position {event.position}" if event.position is not None else "queued"
            self._show_status(
                "busy",
                f"Waiting in the {self._proc.backend.name} queue: {where} · {event.elapsed:.1f} s",
            )
        elif event.kind == "running":
            last = f" · {event.logs[-1]}" if event.logs else ""
            self._show_status(
                "busy",
                f"Running on {self._proc.backend.name} · {event.elapsed:.1f} s{last}",
            )

    def _schedule(self, coro: Any) -> None:
        """Run a button's coroutine as a kept task; its failure is shown, never lost."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            coro.close()
            raise NbimgprepError(
                "No running event loop to run the operation on: use the widget in Jupyter, "
                "or call `await prep.apply(...)` from async code."
            ) from None
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, NbimgprepError):
            # NbimgprepErrors were already shown by _run; anything else is a bug to show.
            self._show_error(exc)

    def _reported_click(self, action: Callable[[], object]) -> Callable[[Any], None]:
        def on_click(_button: Any) -> None:
            try:
                action()
            except Exception as exc:
                self._show_error(exc)

        return on_click

    def _click_apply_crop(self) -> None:
        self.apply_crop()

    def _set_busy(self, busy: bool) -> None:
        for label, b in self.buttons.items():
            if label == "Cancel":
                b.disabled = not busy
                b.button_style = "danger" if busy else ""
            elif label == "Apply crop":
                b.disabled = busy or self._box is None
            elif label == "Use result":
                b.add_class("nbip-use")
                b.disabled = busy or self._result is None
            elif label == "Redo":
                b.disabled = busy or self._last is None
            else:
                b.disabled = busy

    def _set_result(self, result: Result | None, ref: ImageRef | None) -> None:
        self._result = result
        self._result_input = ref
        if result is None:
            self.after_image.layout.display = "none"
            self.after_empty.layout.display = None
            self.after_label.value = '<div class="nbip-label"><b>Result</b></div>'
        else:
            img = result.image
            data, fmt, _ = encode_preview(img, self._max_preview)
            self.after_image.format = fmt
            self.after_image.value = data
            self.after_image.layout.display = None
            self.after_empty.layout.display = "none"
            kind = "hit" if result.cache_hit else "fresh"
            tag = "cache hit" if result.cache_hit else "fresh"
            self.after_label.value = (
                f'<div class="nbip-label"><b>Result</b> '
                f"<span>{img.width}{TIMES}{img.height} px</span>"
                f" <span>{html.escape(_op_title(result.operation, result.params))}</span>"
                f'<span class="nbip-chip nbip-{kind}">{tag}</span></div>'
            )
        self._set_busy(self.busy)

    def _add_step(self, step: HistoryStep) -> None:
        self._history.append(step)
        items = []
        for s in self._history[-12:]:
            kind = "local" if s.cache_hit is None else "hit" if s.cache_hit else "fresh"
            items.append(f'<li class="nbip-step nbip-step-{kind}">{html.escape(s.describe())}</li>')
        self.history_html.value = (
            '<div class="nbip-history"><div class="nbip-history-title">History</div>'
            f"<ol>{''.join(items)}</ol></div>"
        )

    # -- status -------------------------------------------------------------------------

    def _show_status(self, kind: str, text: str) -> None:
        icon = {"hit": "✓", "fresh": "●", "busy": "⏳", "error": "⚠", "ok": "✓"}.get(kind, "")
        self.status.value = (
            f'<div class="nbip-status nbip-status-{kind}"><span class="nbip-icon">{icon}</span> '
            f"{html.escape(text)}</div>"
        )

    def _show_error(self, exc: BaseException, doing: str | None = None) -> None:
        """Errors are shown with what to do next; the widget stays usable."""
        prefix = f"{doing} failed: " if doing else ""
        if isinstance(exc, NbimgprepError):
            text = f"{prefix}{exc}"
        else:
            log.error("ImagePrep: unexpected error", exc_info=exc)
            text = (
                f"{prefix}unexpected {type(exc).__name__}: {exc}. The widget is still usable; "
                "try again, and if it keeps failing report it with this message."
            )
        self._show_status("error", text)


def _short_name(name: str) -> str:
    """The file name, without folders, for the header (the full name is the tooltip)."""
    if name.startswith("image from"):
        return name
    head, sep, _ = name.partition(" cropped to ")
    base = Path(head).name or head
    return f"{base} (cropped)" if sep else base


_CSS = """
<style>
.nbip-root { font-family: var(--jp-ui-font-family, system-ui, sans-serif);
  color: var(--jp-ui-font-color1, #1f2430); gap: 10px; padding: 12px 14px;
  border: 1px solid var(--jp-border-color2, #e3e6ec); border-radius: 10px;
  background: var(--jp-layout-color1, #fff); box-sizing: border-box; }
.nbip-row, .nbip-ops { gap: 8px; } .nbip-panels { gap: 14px; } .nbip-upscale { gap: 2px; }
.nbip-panel { gap: 8px; }
.nbip-header { display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
.nbip-title { font-weight: 650; font-size: 15px; letter-spacing: .2px; }
.nbip-name { color: var(--jp-ui-font-color2, #5b6372); font-size: 13px; }
.nbip-hash, .nbip-backend { font-family: var(--jp-code-font-family, monospace); font-size: 12px;
  padding: 2px 8px; border-radius: 999px; background: var(--jp-layout-color2, #eef1f5);
  color: var(--jp-ui-font-color1, #2b3140); }
.nbip-backend { font-family: inherit; }
.nbip-panel { padding: 10px; border-radius: 8px; background: var(--jp-layout-color2, #f6f7f9);
  box-sizing: border-box; }
.nbip-label { display: flex; gap: 8px; align-items: baseline; font-size: 13px; flex-wrap: wrap; }
.nbip-label span { color: var(--jp-ui-font-color2, #5b6372); }
.nbip-canvas, .nbip-after img, .nbip-after { border-radius: 6px; display: block;
  background-color: #fff;
  background-image: linear-gradient(45deg, #e9ebef 25%, transparent 25%),
    linear-gradient(-45deg, #e9ebef 25%, transparent 25%),
    linear-gradient(45deg, transparent 75%, #e9ebef 75%),
    linear-gradient(-45deg, transparent 75%, #e9ebef 75%);
  background-size: 16px 16px; background-position: 0 0, 0 8px, 8px -8px, -8px 0; }
.nbip-after { max-width: 100%; height: auto; object-fit: contain; }
.nbip-canvas:focus { outline: 2px solid #2f6fde; outline-offset: 2px; }
.nbip-cur-crosshair { cursor: crosshair; } .nbip-cur-move { cursor: move; }
.nbip-cur-nwse { cursor: nwse-resize; } .nbip-cur-nesw { cursor: nesw-resize; }
.nbip-cur-ns { cursor: ns-resize; } .nbip-cur-ew { cursor: ew-resize; }
.nbip-empty { display: flex; align-items: center; justify-content: center; text-align: center;
  min-height: 220px; border: 2px dashed var(--jp-border-color2, #d5d9e0); border-radius: 8px;
  color: var(--jp-ui-font-color2, #7a8291); font-size: 13px; line-height: 1.6; padding: 16px; }
.nbip-root .nbip-btn { border-radius: 6px; padding: 0 12px; }
.nbip-aspect .widget-toggle-button, .nbip-scale .widget-toggle-button { width: auto;
  min-width: 44px; padding: 0 10px; }
.nbip-field input { width: 62px; }
.nbip-use { align-self: flex-start; }
.nbip-sep { display: inline-block; width: 1px; height: 22px; margin: 0 4px;
  background: var(--jp-border-color2, #d5d9e0); }
.nbip-status { display: flex; gap: 8px; align-items: center; padding: 8px 12px;
  border-radius: 8px; font-size: 13px; line-height: 1.4; border: 1px solid transparent; }
.nbip-icon { font-weight: 700; }
.nbip-status-idle { background: var(--jp-layout-color2, #f1f3f6); color: #4a5262; }
.nbip-status-ok { background: #eef4ff; color: #1f4fa8; border-color: #d4e2ff; }
.nbip-status-busy { background: #fff6e0; color: #7a5200; border-color: #f5e0a8; }
.nbip-status-hit { background: #e7f6ec; color: #116a32; border-color: #c4e8d0; }
.nbip-status-fresh { background: #eef1ff; color: #3b3fb8; border-color: #d5d9ff; }
.nbip-status-error { background: #fdecea; color: #a1231a; border-color: #f6c9c4; }
.nbip-chip { font-size: 11px; padding: 1px 8px; border-radius: 999px; font-weight: 600; }
.nbip-chip.nbip-hit { background: #d8f1e0; color: #116a32; }
.nbip-chip.nbip-fresh { background: #e2e6ff; color: #3b3fb8; }
.nbip-history { font-size: 12px; color: var(--jp-ui-font-color2, #5b6372); }
.nbip-history-title { font-weight: 600; margin-bottom: 2px; }
.nbip-history ol { margin: 0; padding-left: 20px; }
.nbip-history li { margin: 0; line-height: 1.6; }
.nbip-step-hit::marker { color: #1a8a45; } .nbip-step-fresh::marker { color: #3b3fb8; }
</style>
"""
