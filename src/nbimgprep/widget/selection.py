"""CropSelection: the crop box and everything a mouse or a key does to it, without widgets.

The canvas handlers of :class:`~nbimgprep.widget.ImagePrep` only translate browser events
into calls here (``press``, ``drag``, ``release``, ``leave``, ``key``) and draw what comes
back, so the whole state machine (draw, move, resize, aspect lock, nudging, clamping) runs
in tests as plain method calls. Points are in canvas (preview) pixels, the way the browser
sends them; the box is always in original-image pixels, built on
:mod:`nbimgprep.crop_geometry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Literal

from ..crop_geometry import (
    ASPECT_PRESETS,
    Box,
    Handle,
    Ratio,
    box_from_points,
    clamp_crop,
    hit_test,
    move_box,
    nudge,
    resize_box,
    to_image,
    with_aspect,
)
from ..errors import OperationError

__all__ = ["CLICK_SLOP", "CropSelection", "KeyAction"]

#: A drag shorter than this (canvas px) is a click: it clears the box instead of drawing one.
CLICK_SLOP = 3.0

#: What a key asks of the widget beyond the box: Enter applies the crop.
KeyAction = Literal["apply"] | None


@dataclass
class _Drag:
    """A drag in progress: what was grabbed, where, and the box as it was then."""

    handle: Handle | None  # None: drawing a new box
    start: tuple[float, float]  # canvas px
    anchor: tuple[float, float]  # image px
    box: Box | None
    moved: bool = False


class CropSelection:
    """The crop box over an image shown at ``scale`` preview px per image px.

    >>> sel = CropSelection((512, 512), scale=1.0)
    >>> sel.press(10, 10); sel.drag(110, 60); sel.release()
    (10, 10, 100, 50)
    """

    def __init__(self, image_size: tuple[int, int], scale: float) -> None:
        self.image_size = image_size
        self.scale = scale
        self.box: Box | None = None
        #: The aspect preset's label (a key of ``ASPECT_PRESETS``) and whether it is locked.
        self.aspect = "Free"
        self.locked = False
        self._ratio: Ratio | None = None
        self._drag: _Drag | None = None

    # -- the image under the box ------------------------------------------------------------

    def show(self, image_size: tuple[int, int], scale: float) -> None:
        """A new image: no box, no drag; a lock with "Free" will follow the next box."""
        self.image_size = image_size
        self.scale = scale
        self.box = None
        self._drag = None
        self._follow_box()

    @property
    def dragging(self) -> bool:
        return self._drag is not None

    # -- the box from Python ------------------------------------------------------------------

    def place(self, box: object) -> Box | None:
        """Set the box from a script: ``(x, y, w, h)`` in image pixels, clamped; None clears.

        Anything else is refused with an :class:`~nbimgprep.errors.OperationError` and the
        box is left as it was.
        """
        if box is None:
            self.box = None
            return None
        if (
            isinstance(box, str | bytes)
            or not isinstance(box, Sequence)
            or len(box) != 4
            or not all(isinstance(v, Real) and not isinstance(v, bool) for v in box)
        ):
            raise OperationError(
                f"crop must be (x, y, w, h) in image pixels (four numbers) or None, got {box!r}."
            )
        x, y, w, h = (float(v) for v in box)
        if not all(abs(v) < float("inf") for v in (x, y, w, h)):
            raise OperationError(f"crop must be four finite numbers, got {box!r}.")
        if w <= 0 or h <= 0:
            raise OperationError(
                f"crop {tuple(box)!r} is empty: width and height must be above 0 "
                "(use None for no box)."
            )
        self.box = clamp_crop((x, y, w, h), self.image_size)
        return self.box

    # -- the mouse ----------------------------------------------------------------------------

    def hover(self, x: float, y: float) -> Handle:
        """What the pointer at (x, y) would grab (for the cursor)."""
        return hit_test(self.box, (x, y), self.scale)

    def press(self, x: float, y: float) -> None:
        """The button went down: grab a handle, the inside, or start a new box."""
        handle = hit_test(self.box, (x, y), self.scale)
        grabbed = None if handle == "outside" else handle
        self._drag = _Drag(grabbed, (x, y), to_image((x, y), self.scale), self.box)

    def drag(self, x: float, y: float) -> bool:
        """The pointer moved with the button down; True when the box changed."""
        drag = self._drag
        if drag is None:
            return False
        if not drag.moved:
            if abs(x - drag.start[0]) < CLICK_SLOP and abs(y - drag.start[1]) < CLICK_SLOP:
                return False
            drag.moved = True
        point = to_image((x, y), self.scale)
        before = self.box
        if drag.handle is None:
            self.box = box_from_points(drag.anchor, point, self.image_size, self._locked_ratio())
        elif drag.handle == "inside" and drag.box is not None:
            dx, dy = point[0] - drag.anchor[0], point[1] - drag.anchor[1]
            self.box = move_box(drag.box, dx, dy, self.image_size)
        elif drag.box is not None:
            self.box = resize_box(
                drag.box, drag.handle, point, self.image_size, self._locked_ratio()
            )
        return self.box != before

    def release(self) -> Box | None:
        """The button went up: the drag ends; a click (no movement) outside clears the box."""
        drag, self._drag = self._drag, None
        if drag is not None and not drag.moved and drag.handle is None:
            self.box = None
        return self.box

    def leave(self) -> bool:
        """The pointer left the canvas: the drag ends where it is. True if one was moving."""
        drag, self._drag = self._drag, None
        return drag is not None and drag.moved

    # -- keys ---------------------------------------------------------------------------------

    def key(self, name: str, shift: bool = False) -> KeyAction:
        """Arrows nudge the box (1 px, Shift 10); Esc clears it; Enter asks to apply it."""
        if name.startswith("Arrow") and self.box is not None:
            self.box = nudge(self.box, name, shift, self.image_size)
        elif name == "Enter" and self.box is not None:
            return "apply"
        elif name == "Escape":
            self._drag = None
            self.box = None
        return None

    # -- aspect ratio -------------------------------------------------------------------------

    def choose_aspect(self, label: str) -> None:
        """Pick a preset: a ratio locks and fits the box to it; "Free" unlocks."""
        if label not in ASPECT_PRESETS:
            raise OperationError(
                f"Unknown aspect {label!r}; use one of {', '.join(ASPECT_PRESETS)}."
            )
        self.aspect = label
        self._ratio = ASPECT_PRESETS[label]
        if self._ratio is None:
            self.locked = False
            return
        self.locked = True
        if self.box is not None:
            self.box = with_aspect(self.box, self._ratio, self.image_size)

    def lock(self, on: bool) -> None:
        """Lock the ratio (with "Free": the box's own ratio), or unlock (back to "Free")."""
        self.locked = on
        if on:
            self._follow_box()
        else:
            self.aspect = "Free"
            self._ratio = None

    def _follow_box(self) -> None:
        """Locked with "Free": keep the current box's own ratio."""
        if self.locked and self.aspect == "Free" and self.box is not None:
            self._ratio = (self.box[2], self.box[3])

    def _locked_ratio(self) -> Ratio | None:
        return self._ratio if self.locked else None
