"""Crop-box geometry for the widget, as pure functions.

The widget shows a scaled preview and the user drags in preview (canvas) pixels, while the
crop box that is applied, shown and scripted is always in original-image pixels. Keeping the
mapping, clamping, aspect lock and hit-testing here, free of widgets, lets property tests
check them on thousands of cases and keeps the mouse handler a few arithmetic operations.

A box is ``(x, y, w, h)`` in image pixels, integers, with ``w`` and ``h`` at least 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ASPECT_PRESETS",
    "Box",
    "Fit",
    "Handle",
    "box_from_points",
    "box_to_canvas",
    "clamp_crop",
    "fit",
    "hit_test",
    "move_box",
    "nudge",
    "resize_box",
    "to_canvas",
    "to_image",
    "with_aspect",
]

Box = tuple[int, int, int, int]
Point = tuple[float, float]
Size = tuple[int, int]
Ratio = tuple[int, int]

#: Where a point falls relative to a box: a corner, an edge, inside or outside.
Handle = Literal["nw", "n", "ne", "e", "se", "s", "sw", "w", "inside", "outside"]

#: The aspect presets the widget offers, label -> (width, height) ratio; ``None`` is free.
ASPECT_PRESETS: dict[str, Ratio | None] = {
    "Free": None,
    "1:1": (1, 1),
    "4:5": (4, 5),
    "3:2": (3, 2),
    "16:9": (16, 9),
}


@dataclass(frozen=True)
class Fit:
    """A preview of an image: its pixel size and its scale (preview px per image px)."""

    width: int
    height: int
    scale: float


def fit(image_size: Size, max_preview: int) -> Fit:
    """The largest preview of ``image_size`` whose long side is at most ``max_preview``.

    Small images are never enlarged (scale 1), so a preview never invents pixels.
    """
    w, h = image_size
    if w < 1 or h < 1:
        raise ValueError(f"image size must be positive, got {image_size}")
    if max_preview < 1:
        raise ValueError(f"max_preview must be positive, got {max_preview}")
    scale = min(1.0, max_preview / max(w, h))
    pw = min(max_preview, max(1, round(w * scale)))
    ph = min(max_preview, max(1, round(h * scale)))
    return Fit(pw, ph, scale)


def to_canvas(point: Point, scale: float) -> Point:
    """An image-pixel point in canvas pixels."""
    return point[0] * scale, point[1] * scale


def to_image(point: Point, scale: float) -> Point:
    """A canvas-pixel point in image pixels (not rounded: rounding happens once, on the box)."""
    return point[0] / scale, point[1] / scale


def box_to_canvas(box: Box, scale: float) -> tuple[float, float, float, float]:
    """A box in canvas pixels, for drawing and hit-testing."""
    x, y, w, h = box
    return x * scale, y * scale, w * scale, h * scale


def _clamp(v: float, lo: float, hi: float) -> float:
    return lo if v < lo else hi if v > hi else v


def _from_edges(left: float, top: float, right: float, bottom: float, size: Size) -> Box:
    """Round float edges to an integer box of at least 1x1, inside the image."""
    w_img, h_img = size
    x0 = int(_clamp(round(min(left, right)), 0, w_img - 1))
    y0 = int(_clamp(round(min(top, bottom)), 0, h_img - 1))
    x1 = int(_clamp(round(max(left, right)), x0 + 1, w_img))
    y1 = int(_clamp(round(max(top, bottom)), y0 + 1, h_img))
    return x0, y0, x1 - x0, y1 - y0


def clamp_crop(box: tuple[float, float, float, float], image_size: Size) -> Box:
    """``box`` made valid: integer, at least 1x1, entirely inside the image.

    A box partly outside is cut to the image; one wholly outside becomes a 1-pixel box at
    the nearest edge (the widget never holds an empty box: "no box" is ``None``).
    """
    x, y, w, h = box
    return _from_edges(x, y, x + max(w, 0), y + max(h, 0), image_size)


def move_box(box: Box, dx: float, dy: float, image_size: Size) -> Box:
    """``box`` shifted by (dx, dy) image pixels, stopped at the image's edges, size kept."""
    x, y, w, h = box
    w_img, h_img = image_size
    w, h = min(w, w_img), min(h, h_img)
    nx = int(_clamp(round(x + dx), 0, w_img - w))
    ny = int(_clamp(round(y + dy), 0, h_img - h))
    return nx, ny, w, h


def nudge(box: Box, key: str, shift: bool, image_size: Size) -> Box:
    """The box after an arrow key: 1 image pixel, or 10 with Shift."""
    step = 10 if shift else 1
    dx, dy = {
        "ArrowLeft": (-step, 0),
        "ArrowRight": (step, 0),
        "ArrowUp": (0, -step),
        "ArrowDown": (0, step),
    }.get(key, (0, 0))
    return move_box(box, dx, dy, image_size)


def box_from_points(anchor: Point, point: Point, image_size: Size, ratio: Ratio | None) -> Box:
    """The box spanned by a fixed ``anchor`` and a dragged ``point`` (image pixels).

    With a ``ratio``, the box keeps it, grows toward ``point`` as far as the larger of the two
    drag distances asks, and stops where it would leave the image.
    """
    w_img, h_img = image_size
    ax, ay = _clamp(anchor[0], 0, w_img), _clamp(anchor[1], 0, h_img)
    px, py = _clamp(point[0], 0, w_img), _clamp(point[1], 0, h_img)
    if ratio is None:
        return _from_edges(ax, ay, px, py, image_size)
    r = ratio[0] / ratio[1]
    sx = 1.0 if point[0] >= ax else -1.0
    sy = 1.0 if point[1] >= ay else -1.0
    want_w = max(abs(point[0] - ax), abs(point[1] - ay) * r)
    room_w = (w_img - ax) if sx > 0 else ax
    room_h = (h_img - ay) if sy > 0 else ay
    w = min(want_w, room_w, room_h * r)
    h = w / r
    return _ratio_box(ax, ay, ax + sx * w, ay + sy * h, image_size, r)


def _ratio_box(left: float, top: float, right: float, bottom: float, size: Size, r: float) -> Box:
    """Round to integers, then fix the height so the ratio holds to within a pixel."""
    x, y, w, h = _from_edges(left, top, right, bottom, size)
    h_fixed = max(1, min(round(w / r), size[1] - y))
    if top > bottom:  # growing upward: keep the bottom edge where the anchor is
        y = max(0, y + h - h_fixed)
    return x, y, w, h_fixed


def resize_box(
    box: Box, handle: Handle, point: Point, image_size: Size, ratio: Ratio | None
) -> Box:
    """``box`` with the grabbed corner or edge moved to ``point`` (image pixels).

    A corner drags against the opposite corner; an edge moves on its axis only (with a
    ratio, the other axis follows, centred). Dragging past the opposite side flips the box.
    """
    x, y, w, h = box
    left, top, right, bottom = float(x), float(y), float(x + w), float(y + h)
    if handle in ("nw", "ne", "se", "sw"):
        anchor = (right if "w" in handle else left, bottom if "n" in handle else top)
        return box_from_points(anchor, point, image_size, ratio)
    if handle not in ("n", "e", "s", "w"):
        return box
    w_img, h_img = image_size
    px, py = _clamp(point[0], 0, w_img), _clamp(point[1], 0, h_img)
    if ratio is None:
        if handle == "e":
            right = px
        elif handle == "w":
            left = px
        elif handle == "s":
            bottom = py
        else:
            top = py
        return _from_edges(left, top, right, bottom, image_size)
    r = ratio[0] / ratio[1]
    if handle in ("e", "w"):
        fixed = left if handle == "e" else right
        direction = 1.0 if px > fixed or (px == fixed and handle == "e") else -1.0
        new_w = min(abs(px - fixed), h_img * r)
        new_h = new_w / r
        cy = _clamp((top + bottom) / 2, new_h / 2, h_img - new_h / 2)
        start = fixed if direction > 0 else fixed - new_w
        return clamp_crop((start, cy - new_h / 2, new_w, new_h), image_size)
    fixed = top if handle == "s" else bottom
    direction = 1.0 if py > fixed or (py == fixed and handle == "s") else -1.0
    new_h = min(abs(py - fixed), w_img / r)
    new_w = new_h * r
    cx = _clamp((left + right) / 2, new_w / 2, w_img - new_w / 2)
    start = fixed if direction > 0 else fixed - new_h
    return clamp_crop((cx - new_w / 2, start, new_w, new_h), image_size)


def with_aspect(box: Box, ratio: Ratio, image_size: Size) -> Box:
    """The largest box of ``ratio`` inside ``box``, centred on it (choosing a preset)."""
    x, y, w, h = box
    r = ratio[0] / ratio[1]
    new_w = min(float(w), h * r)
    new_h = new_w / r
    cx, cy = x + w / 2, y + h / 2
    return clamp_crop((cx - new_w / 2, cy - new_h / 2, new_w, new_h), image_size)


def hit_test(box: Box | None, point: Point, scale: float, tolerance: float = 8.0) -> Handle:
    """What a canvas-pixel ``point`` grabs of ``box``: a corner, an edge, inside or outside.

    ``tolerance`` is in canvas pixels, so handles are as easy to grab on a small preview of
    a huge image as on a 1:1 one. Corners win over edges, edges over inside.
    """
    if box is None:
        return "outside"
    bx, by, bw, bh = box_to_canvas(box, scale)
    px, py = point
    near_l, near_r = abs(px - bx) <= tolerance, abs(px - (bx + bw)) <= tolerance
    near_t, near_b = abs(py - by) <= tolerance, abs(py - (by + bh)) <= tolerance
    in_x = bx - tolerance <= px <= bx + bw + tolerance
    in_y = by - tolerance <= py <= by + bh + tolerance
    if not (in_x and in_y):
        return "outside"
    vertical = "n" if near_t else "s" if near_b else ""
    horizontal = "w" if near_l else "e" if near_r else ""
    if near_t and near_b:  # a box thinner than two tolerances: pick the nearer edge
        vertical = "n" if abs(py - by) <= abs(py - (by + bh)) else "s"
    if near_l and near_r:
        horizontal = "w" if abs(px - bx) <= abs(px - (bx + bw)) else "e"
    name = vertical + horizontal
    if name:
        return name  # type: ignore[return-value]
    if bx <= px <= bx + bw and by <= py <= by + bh:
        return "inside"
    return "outside"
