"""ImagePrep: look at an image, crop it by dragging, press a button, see before and after.

The widget is a thin face over :class:`~nbimgprep.processor.Processor`: every button calls
the same public method a script would (``await prep.apply("upscale", scale=2)``), so what
the tests drive without a browser is what a person drives with a mouse. It composes its
parts: :class:`~nbimgprep.widget.selection.CropSelection` (the crop box state machine),
:class:`~nbimgprep.widget.layers.ImageLayers` (the canvas), :mod:`~nbimgprep.widget.controls`
(buttons and panels), :mod:`~nbimgprep.widget.status` and :mod:`~nbimgprep.widget.markup`
(what it says, as data and as HTML) and :mod:`~nbimgprep.widget.running` (the tasks).

The crop box, the status line and the busy flag are traitlets (``prep.observe(f, "crop")``).
Exceptions raised in widget callbacks are invisible in Jupyter: every handler here reports
failures in the status line, with what to do next, and leaves the controls usable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as W
import traitlets
from PIL import Image

from ..crop_geometry import Box
from ..errors import OperationError, ProcessingCancelled
from ..images import ImageRef
from ..operations import get_operation
from ..pixels import open_image
from ..results import Result
from ..thumbnails import Thumbnail
from .controls import Buttons, Controls
from .cropping import CropInput
from .inputs import InputImage
from .layers import TIMES, ImageLayers, Preview, result_preview
from .markup import (
    history_html,
    status_html,
)
from .running import OperationSlot, TaskKeeper, reported_click
from .saving import save_image
from .selection import CropSelection
from .status import (
    HistoryStep,
    Status,
    StatusKind,
    error_status,
    progress_status,
    result_status,
    step_title,
)

if TYPE_CHECKING:
    from ..processor import Processor, ProgressEvent, Source

__all__ = ["ImagePrep"]

log = logging.getLogger(__name__)


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

    #: The crop box ``(x, y, w, h)`` in original-image pixels, or None for no box.
    crop = traitlets.Any(None, allow_none=True)
    #: True while an operation runs.
    busy = traitlets.Bool(False, read_only=True)
    #: The status line as plain text (what the person reads), and its kind.
    status_text = traitlets.Unicode("", read_only=True)
    status_kind = traitlets.Unicode("idle", read_only=True)
    #: Show the result with its input beneath a divider (the Compare toggle).
    compare = traitlets.Bool(False)

    def __init__(
        self,
        source: Source,
        processor: Processor | None = None,
        crop: tuple[int, int, int, int] | None = None,
        max_preview: int = 1024,
    ) -> None:
        if processor is None:
            from ..processor import Processor

            processor = Processor()
        if max_preview < 16:
            raise OperationError(f"max_preview={max_preview} is too small; use 256 or more.")
        self._proc = processor
        self._max_preview = int(max_preview)
        # The input is kept as where its pixels come from, not as pixels (see inputs.py).
        self._original, preview = InputImage.decode(processor.image(source), self._preview)
        self._input = self._original
        #: The parts, for scripts and tests: the crop box's state machine, the canvas and
        #: its preview, every control; the buttons by what they do (``buttons.upscale``).
        self.selection = self._selection = CropSelection(self._original.size, 1.0)
        self.layers = self._layers = ImageLayers()
        self.controls = self._controls = Controls(self._show_error)
        self.buttons: Buttons = self._controls.buttons
        self.canvas = self._layers.canvas
        self._result: Result | None = None
        self._result_input: InputImage | None = None  # what the shown result was made from
        self._compare_input: Thumbnail | None = None  # the preview of the result's input
        self._history: list[HistoryStep] = []
        self._last: tuple[InputImage, str, dict[str, Any]] | None = None
        self._slot = OperationSlot()
        self._tasks = TaskKeeper(self._show_error)
        self._crop_input = CropInput(self, self._layers, self._selection, self._controls)
        self._wire()
        super().__init__(
            children=self._controls.children(self._layers.canvas), layout=W.Layout(width="100%")
        )
        self.add_class("nbip-root")
        traitlets.link((self, "compare"), (self._controls.compare.toggle, "value"))
        self._set_input(self._original, preview)
        if crop is not None:
            self.crop = crop
        self._show_status("idle", "Drag on the image to select a crop, or press an operation.")

    # -- public API ---------------------------------------------------------------------

    @traitlets.validate("crop")
    def _valid_crop(self, proposal: Mapping[str, Any]) -> Box | None:
        return self._selection.place(proposal["value"])

    @traitlets.observe("crop")
    def _crop_changed(self, change: Mapping[str, Any]) -> None:
        if self.crop is None:  # traitlets lets None through without validating it
            self._selection.place(None)
        self._layers.draw_box(self.crop)
        if not self._selection.dragging:
            self._crop_input.sync_fields()

    @property
    def image(self) -> Image.Image:
        """The current input image (after any crop or "Use result"), full size.

        Decoded on each access (the widget keeps only previews): keep it in a variable if
        you need it more than once.
        """
        return self._input.open()

    @property
    def image_ref(self) -> ImageRef:
        """The current input as an :class:`~nbimgprep.images.ImageRef` (a fresh one)."""
        return self._input.ref()

    @property
    def result(self) -> Result | None:
        """The last operation's :class:`~nbimgprep.processor.Result`, or None."""
        return self._result

    @property
    def result_input(self) -> ImageRef | None:
        """The input the last result was made from (after a crop, the cropped image), or
        None with no result."""
        return None if self._result_input is None else self._result_input.ref()

    @property
    def history(self) -> list[HistoryStep]:
        """The steps run so far, oldest first."""
        return list(self._history)

    async def apply(self, operation: str, *, refresh: bool = False, **params: Any) -> Result:
        """Run ``operation`` on the current input through the cache; the buttons call this.

        Raises what the processor raises (after showing it in the widget), and
        :class:`~nbimgprep.errors.ProcessingCancelled` when Cancel is pressed.
        """
        get_operation(operation)  # unknown names fail here, before anything changes
        return await self._run(self._input, operation, dict(params), refresh)

    async def redo(self) -> Result:
        """Run the last operation again, fresh (``refresh=True``): for a result you dislike."""
        if self._last is None:
            raise OperationError("Nothing to redo yet: run an operation first.")
        source, operation, params = self._last
        return await self._run(source, operation, params, True)

    async def wait(self) -> None:
        """Wait until the operations started by buttons have finished (scripts, tests)."""
        await self._tasks.wait()

    def cancel(self) -> None:
        """Cancel the running operation (and its fal.ai request); nothing is cached."""
        self._slot.cancel()

    def apply_crop(self) -> ImageRef:
        """Make the crop box the new input: a new image, with its own hash."""
        self._check_idle()
        box = self.crop
        if box is None:
            raise OperationError("No crop box: drag on the image to draw one first.")
        started = time.perf_counter()
        cropped, preview = self._input.crop(box, self._preview)
        self._set_input(cropped, preview)
        short = cropped.sha256[:12]
        elapsed = time.perf_counter() - started
        self._add_step(HistoryStep.local("crop", {"box": box}, elapsed, cropped))
        self._show_status("ok", f"Cropped to {box[2]}{TIMES}{box[3]} px: a new image #{short}.")
        return cropped.ref()

    def use_result(self) -> ImageRef:
        """Make the last result the new input, so operations chain (each step cached)."""
        self._check_idle()
        if self._result is None:
            raise OperationError("No result yet: run an operation first.")
        used, preview = InputImage.decode(self._proc.image(self._result.path), self._preview)
        self._set_input(used, preview)
        short = used.sha256[:12]
        self._add_step(HistoryStep.local("use_result", {}, 0.0, used))
        self._show_status("ok", f"The result is the new input #{short}.")
        return used.ref()

    def reset(self) -> None:
        """Back to the original image: no box, no result (the history is kept)."""
        self._check_idle()
        self._set_result(None)
        self._set_input(self._original, self._original.look(self._preview))
        self._show_status("idle", "Back to the original image.")

    def save(self, path: str | Path) -> Path:
        """Save the last result (or the current input when there is none) to ``path``.

        The format follows the suffix; a result saved with its own format is copied byte
        for byte. An unknown suffix or a missing folder is an
        :class:`~nbimgprep.errors.ImageError` saying so; nothing is written.
        """
        if self._result is not None:
            result_path = self._result.path
            return save_image(path, result_path, lambda: open_image(result_path))
        return save_image(path, None, self._input.open)

    def __repr__(self) -> str:
        w, h = self._input.size
        return f"<ImagePrep {self._input.name!r} {w}x{h} #{self._input.sha256[:12]}>"

    # -- wiring ---------------------------------------------------------------------------

    def _wire(self) -> None:
        c, b = self._controls, self._controls.buttons
        clicks: dict[Any, Callable[[], object]] = {
            b.apply_crop: self.apply_crop,
            b.reset: self.reset,
            b.remove_background: lambda: self._tasks.schedule(self.apply("remove_background")),
            b.upscale: lambda: self._tasks.schedule(self.apply("upscale", scale=c.scale.value)),
            b.face_detail: lambda: self._tasks.schedule(self.apply("face_detail")),
            b.redo: lambda: self._tasks.schedule(self.redo()),
            b.cancel: self.cancel,
            b.use_result: self.use_result,
        }
        for button, action in clicks.items():
            button.on_click(reported_click(action, self._show_error))
        self._update_buttons()

    def _check_idle(self) -> None:
        if self.busy:
            raise OperationError("An operation is running: wait for it, or press Cancel.")

    def _update_buttons(self) -> None:
        self._controls.buttons.update(
            busy=self.busy,
            has_box=self.crop is not None,
            has_result=self._result is not None,
            can_redo=self._last is not None,
        )

    # -- input and result ---------------------------------------------------------------

    def _preview(self, pixels: Image.Image) -> Preview:
        return Preview(pixels, self._max_preview)

    def _set_input(self, source: InputImage, preview: Preview) -> None:
        """Show a new input by its preview (encoded once): resize the canvas, redraw."""
        self._input = source
        self._layers.show(preview)
        self._selection.show(source.size, preview.fit.scale)
        self.crop = None
        self._layers.redraw(None)
        self._controls.show_input(source.name, source.sha256, source.size, self._proc.backend.name)
        self._crop_input.sync_fields()

    def _set_result(self, result: Result | None, made_from: InputImage | None = None) -> None:
        """Show a result's preview, made from its file (``result.image`` is never touched:
        it would keep the full-size pixels for as long as the result is shown)."""
        self._result = result
        self._result_input = made_from if result is not None else None
        preview = None if result is None else result_preview(result.path, self._max_preview)
        shown = self._layers.preview
        self._compare_input = shown.thumb if result is not None and shown is not None else None
        self._controls.show_result(result, preview, self._compare_input, self.compare)
        self._update_buttons()

    @traitlets.observe("compare")
    def _compare_changed(self, change: Mapping[str, Any]) -> None:
        self._controls.show_compare(self._compare_input, self.compare)

    def _add_step(self, step: HistoryStep) -> None:
        self._history.append(step)
        self._controls.history.value = history_html(self._history)

    # -- running operations -------------------------------------------------------------

    async def _run(
        self, source: InputImage, operation: str, params: dict[str, Any], refresh: bool
    ) -> Result:
        self._slot.check_idle()
        title = step_title(operation, params)
        self._last = (source, operation, params)
        work = self._proc.run(  # a fresh ImageRef: its pixels go when the call is done
            operation, source.ref(), refresh=refresh, on_progress=self._on_progress, **params
        )
        self.set_trait("busy", True)
        self._update_buttons()
        verb = "Running again, fresh:" if refresh else "Running"
        self._show_status("busy", f"{verb} {title} on the {self._proc.backend.name} backend…")
        try:
            result = await self._slot.run(title, work)
        except ProcessingCancelled:
            self._show_status("idle", f"Cancelled {title}: nothing was cached.")
            raise
        except Exception as exc:
            self._show_error(exc, title)
            raise
        finally:
            self.set_trait("busy", False)
            self._update_buttons()
        self._set_result(result, source)
        self._add_step(HistoryStep.of_result(result, self._proc.image(result.path).sha256[:12]))
        self._show(result_status(result))
        return result

    def _on_progress(self, event: ProgressEvent) -> None:
        """Queue position and logs while a call waits (fal.ai reports them)."""
        status = progress_status(event, self._proc.backend.name)
        if self.busy and status is not None:
            self._show(status)

    # -- status -------------------------------------------------------------------------

    def _show(self, status: Status) -> None:
        self.set_trait("status_kind", status.kind)
        self.set_trait("status_text", status.text)
        self._controls.status.value = status_html(status)

    def _show_status(self, kind: StatusKind, text: str) -> None:
        self._show(Status(kind, text))

    def _show_error(self, exc: BaseException, doing: str | None = None) -> None:
        """Errors are shown with what to do next; the widget stays usable."""
        self._show(error_status(exc, doing))
