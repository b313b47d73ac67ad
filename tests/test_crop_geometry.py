"""Properties of the crop geometry the widget relies on, checked with Hypothesis.

Every box the widget can ever hold comes out of these functions, so "inside the image,
at least 1x1, ratio kept within a pixel" here means the same in the widget.
"""

from __future__ import annotations

from typing import get_args

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from nbimgprep.crop_geometry import (
    ASPECT_PRESETS,
    Box,
    Handle,
    box_from_points,
    box_to_canvas,
    clamp_crop,
    fit,
    hit_test,
    move_box,
    nudge,
    resize_box,
    to_canvas,
    to_image,
    with_aspect,
)

sizes = st.tuples(st.integers(1, 12000), st.integers(1, 12000))
previews = st.integers(16, 2048)
ratios = st.sampled_from([r for r in ASPECT_PRESETS.values() if r is not None])
maybe_ratios = st.sampled_from(list(ASPECT_PRESETS.values()))
handles = st.sampled_from([h for h in get_args(Handle) if h not in ("inside", "outside")])


@st.composite
def image_and_box(draw: st.DrawFn) -> tuple[tuple[int, int], Box]:
    w, h = draw(st.tuples(st.integers(1, 5000), st.integers(1, 5000)))
    x = draw(st.integers(0, w - 1))
    y = draw(st.integers(0, h - 1))
    return (w, h), (x, y, draw(st.integers(1, w - x)), draw(st.integers(1, h - y)))


def points_near(size: tuple[int, int]) -> st.SearchStrategy[tuple[float, float]]:
    """Points in and somewhat beyond the image: drags do leave the canvas."""
    w, h = size
    return st.tuples(st.floats(-w / 2, w * 1.5), st.floats(-h / 2, h * 1.5))


def assert_valid(box: Box, size: tuple[int, int]) -> None:
    x, y, w, h = box
    assert all(isinstance(v, int) for v in box)
    assert w >= 1 and h >= 1
    assert x >= 0 and y >= 0 and x + w <= size[0] and y + h <= size[1]


def assert_ratio(box: Box, ratio: tuple[int, int]) -> None:
    """The box has the ratio to within the one pixel that rounding may cost each side."""
    _, _, w, h = box
    r = ratio[0] / ratio[1]
    assert abs(w - h * r) <= 1 + r, (box, ratio)


@given(sizes, previews)
def test_fit_keeps_the_long_side_within_max_preview_and_the_shape(
    size: tuple[int, int], max_preview: int
) -> None:
    f = fit(size, max_preview)
    assert max(f.width, f.height) <= max_preview
    assert 0 < f.scale <= 1
    assert abs(f.width - size[0] * f.scale) <= 1 and abs(f.height - size[1] * f.scale) <= 1
    if max(size) <= max_preview:  # small images are shown 1:1, never enlarged
        assert (f.width, f.height) == size


@given(sizes, previews, st.data())
def test_image_to_canvas_to_image_round_trips_within_one_pixel(
    size: tuple[int, int], max_preview: int, data: st.DataObject
) -> None:
    f = fit(size, max_preview)
    p = (data.draw(st.integers(0, size[0])), data.draw(st.integers(0, size[1])))
    back = to_image(to_canvas(p, f.scale), f.scale)
    assert abs(back[0] - p[0]) <= 1 and abs(back[1] - p[1]) <= 1
    c = (data.draw(st.floats(0, f.width)), data.draw(st.floats(0, f.height)))
    again = to_canvas(to_image(c, f.scale), f.scale)
    assert abs(again[0] - c[0]) <= 1 and abs(again[1] - c[1]) <= 1


@given(
    sizes,
    st.tuples(st.floats(-1e5, 1e5), st.floats(-1e5, 1e5), st.floats(-10, 1e5), st.floats(-10, 1e5)),
)
def test_clamp_crop_always_gives_a_box_inside_the_image(
    size: tuple[int, int], box: tuple[float, float, float, float]
) -> None:
    assert_valid(clamp_crop(box, size), size)


@given(image_and_box())
def test_clamp_crop_leaves_a_valid_box_alone(case: tuple[tuple[int, int], Box]) -> None:
    size, box = case
    assert clamp_crop(box, size) == box


@given(sizes, st.data(), maybe_ratios)
def test_drawing_a_box_stays_inside_and_keeps_a_locked_ratio(
    size: tuple[int, int], data: st.DataObject, ratio: tuple[int, int] | None
) -> None:
    anchor = data.draw(st.tuples(st.floats(0, size[0]), st.floats(0, size[1])))
    point = data.draw(points_near(size))
    box = box_from_points(anchor, point, size, ratio)
    assert_valid(box, size)
    if ratio is not None and min(box[2], box[3]) > 2:
        assert_ratio(box, ratio)


@given(image_and_box(), st.data(), maybe_ratios)
def test_resizing_by_any_handle_stays_inside_and_keeps_a_locked_ratio(
    case: tuple[tuple[int, int], Box], data: st.DataObject, ratio: tuple[int, int] | None
) -> None:
    size, box = case
    handle = data.draw(handles)
    point = data.draw(points_near(size))
    resized = resize_box(box, handle, point, size, ratio)
    assert_valid(resized, size)
    if ratio is not None and min(resized[2], resized[3]) > 2:
        assert_ratio(resized, ratio)


@given(image_and_box(), st.floats(-1e4, 1e4), st.floats(-1e4, 1e4))
def test_moving_keeps_the_size_and_stops_at_the_edges(
    case: tuple[tuple[int, int], Box], dx: float, dy: float
) -> None:
    size, box = case
    moved = move_box(box, dx, dy, size)
    assert_valid(moved, size)
    assert moved[2:] == box[2:]


@given(image_and_box(), st.sampled_from(["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"]))
def test_an_arrow_and_its_opposite_cancel_out_away_from_the_edges(
    case: tuple[tuple[int, int], Box], key: str
) -> None:
    size, box = case
    x, y, w, h = box
    assume(x >= 10 and y >= 10 and x + w + 10 <= size[0] and y + h + 10 <= size[1])
    opposite = {
        "ArrowLeft": "ArrowRight",
        "ArrowRight": "ArrowLeft",
        "ArrowUp": "ArrowDown",
        "ArrowDown": "ArrowUp",
    }[key]
    for shift in (False, True):
        moved = nudge(box, key, shift, size)
        step = abs(moved[0] - x) + abs(moved[1] - y)
        assert step == (10 if shift else 1)
        assert nudge(moved, opposite, shift, size) == box


@given(image_and_box(), ratios)
def test_choosing_a_preset_fits_that_ratio_inside_the_current_box(
    case: tuple[tuple[int, int], Box], ratio: tuple[int, int]
) -> None:
    size, box = case
    shaped = with_aspect(box, ratio, size)
    assert_valid(shaped, size)
    x, y, w, h = box
    sx, sy, sw, sh = shaped
    assert x - 1 <= sx and y - 1 <= sy and sx + sw <= x + w + 1 and sy + sh <= y + h + 1
    if min(sw, sh) > 2:
        assert_ratio(shaped, ratio)


@given(st.floats(0.05, 1.0), st.data())
def test_corners_and_the_middle_hit_what_they_look_like(scale: float, data: st.DataObject) -> None:
    size = (4000, 3000)
    least = int(41 / scale) + 1  # handles of a tiny box overlap; corners win there
    w = data.draw(st.integers(least, size[0]))
    h = data.draw(st.integers(least, size[1]))
    box = (data.draw(st.integers(0, size[0] - w)), data.draw(st.integers(0, size[1] - h)), w, h)
    bx, by, bw, bh = box_to_canvas(box, scale)
    assert hit_test(box, (bx, by), scale) == "nw"
    assert hit_test(box, (bx + bw, by + bh), scale) == "se"
    assert hit_test(box, (bx + bw + 3, by - 3), scale) == "ne"
    assert hit_test(box, (bx, by + bh / 2), scale) == "w"
    assert hit_test(box, (bx + bw / 2, by + bh), scale) == "s"
    assert hit_test(box, (bx + bw / 2, by + bh / 2), scale) == "inside"
    assert hit_test(box, (bx - 30, by + bh / 2), scale) == "outside"
    assert hit_test(None, (bx, by), scale) == "outside"


def test_a_drag_up_and_left_with_a_ratio_grows_from_the_anchor() -> None:
    box = box_from_points((500, 500), (100, 400), (1000, 1000), (1, 1))
    assert box == (100, 100, 400, 400)


def test_dragging_an_edge_past_the_opposite_one_flips_the_box() -> None:
    assert resize_box((100, 100, 50, 50), "e", (80, 120), (1000, 1000), None) == (80, 100, 20, 50)


def test_fit_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        fit((0, 10), 100)
    with pytest.raises(ValueError):
        fit((10, 10), 0)
